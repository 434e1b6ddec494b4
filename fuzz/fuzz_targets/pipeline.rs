//! The whole pipeline on a small capture: the input is written as a file
//! and analysed with `--messages` into a scratch directory.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sipaudit::pipeline::{Config, run};

fuzz_target!(|data: &[u8]| {
    if common::compressed(data) {
        return;
    }
    let input = common::scratch("pipeline.pcap");
    let out = common::scratch("pipeline-out");
    std::fs::write(&input, data).unwrap();
    let cfg = Config {
        inputs: vec![input],
        out_dir: out,
        jobs: Some(1),
        messages: true,
        ..Default::default()
    };
    let _ = run(&cfg);
});
