//! Routes: the homes of the records that are not tracked under their own
//! partition key (B2BUA and AS legs, router.rs), decided once over the
//! records of the whole batch, so that a batch can be cut into partitions
//! that each hold every leg one run tracks together.
//!
//! - [`route_records`] (`sipaudit route-records -o ROUTES RECORDS...`):
//!   reads the routing columns of every records file (or of files cut down
//!   to those columns, `records::read::ROUTING_COLUMNS`), merges them into
//!   the timeline `analyze` would see, runs the [`Router`] over it and
//!   writes one line per moved record.
//! - [`Routes::load`] and [`Routes::home`]: what `analyze --records
//!   --partition K/N --routes ROUTES` reads to select and track its
//!   partition by home.
//!
//! The file (text, UTF-8; docs/records.md "Routes"):
//! ```text
//! sipaudit-routes<TAB>1<TAB>w0_ns<TAB><W0 of the policy, ns>
//! input<TAB><index><TAB><the input's name, a JSON string>    (one per input, in order)
//! <input index><TAB><frame><TAB><seq><TAB><home, 16 hex digits>   (one per moved record)
//! ```
//!
//! Owns: the file format and the pre-pass. Never tracks a session.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::merge::{self, Timed};
use super::router::{RouteFacts, Router};
use crate::dialog::Method;
use crate::error::{Error, ErrorKind};
use crate::records::read::{self, RoutingRow};

/// First word of a routes file.
pub const ROUTES_FORMAT: &str = "sipaudit-routes";
/// Its version.
pub const ROUTES_VERSION: u32 = 1;

fn bad(path: &Path, detail: impl std::fmt::Display) -> Error {
    ErrorKind::Records {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
    .into()
}

fn io(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

impl Timed for RoutingRow {
    fn order(&self) -> (i64, u64, u32) {
        (self.ts_ns, self.frame, self.seq)
    }
}

impl RouteFacts {
    /// The facts of a records row.
    pub fn of_row(r: &RoutingRow) -> RouteFacts {
        RouteFacts {
            ts: r.ts_ns,
            key: r.partition_key,
            ties: r.request && !matches!(r.method, Method::Ack | Method::Cancel),
            corr: r.corr,
        }
    }
}

/// What [`route_records`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSummary {
    /// Inputs (records files).
    pub inputs: usize,
    /// Records read.
    pub records: u64,
    /// Records whose home is not their own key (lines written).
    pub moved: u64,
}

/// `sipaudit route-records`: the routes of the records files `named`
/// (files or directories, as `analyze --records` takes them) under W0
/// `w0_ns`, written to `out`.
pub fn route_records(named: &[PathBuf], w0_ns: i64, out: &Path) -> Result<RouteSummary, Error> {
    let opened = super::records::open_all(named)?;
    let first_ts: Vec<Option<i64>> = opened.iter().map(|o| o.facts.first_packet_ns).collect();
    let tmp = out.with_extension("partial");
    let f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let mut w = BufWriter::new(f);
    let mut head = format!("{ROUTES_FORMAT}\t{ROUTES_VERSION}\tw0_ns\t{w0_ns}\n");
    for (i, o) in opened.iter().enumerate() {
        let name = serde_json::to_string(&o.facts.file).expect("a string serialises");
        head.push_str(&format!("input\t{i}\t{name}\n"));
    }
    w.write_all(head.as_bytes()).map_err(|e| io(&tmp, e))?;
    let mut router = Router::new(w0_ns);
    let mut sum = RouteSummary {
        inputs: opened.len(),
        ..RouteSummary::default()
    };
    let mut werr = None;
    let results = merge::merge(
        &first_ts,
        &merge::MergeOptions::default(),
        |i, emit| read::read_routing(&opened[i].path, &mut |r| emit(r)),
        |i, r: RoutingRow, _| {
            sum.records += 1;
            let home = router.route(&RouteFacts::of_row(&r));
            if home != r.partition_key && werr.is_none() {
                sum.moved += 1;
                let line = format!("{i}\t{}\t{}\t{home:016x}\n", r.frame, r.seq);
                werr = w.write_all(line.as_bytes()).err();
            }
        },
    );
    if let Some(e) = results.into_iter().find_map(Result::err) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let done = match werr {
        Some(e) => Err(e),
        None => w.flush().and_then(|_| w.get_ref().sync_all()),
    };
    done.map_err(|e| io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
    Ok(sum)
}

/// A routes file read back.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    /// W0 the routes were decided under.
    pub w0_ns: i64,
    /// The inputs, in order.
    pub inputs: Vec<String>,
    /// (input index, frame, seq) → home.
    homes: FxHashMap<(u32, u64, u32), u64>,
}

impl Routes {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Routes, Error> {
        let f = File::open(path).map_err(|e| io(path, e))?;
        let mut lines = BufReader::new(f).lines().enumerate();
        let head = match lines.next() {
            Some((_, l)) => l.map_err(|e| io(path, e))?,
            None => return Err(bad(path, "empty: not a routes file")),
        };
        let w: Vec<&str> = head.split('\t').collect();
        let w0_ns = match w[..] {
            [ROUTES_FORMAT, v, "w0_ns", w0] if v == ROUTES_VERSION.to_string() => w0
                .parse()
                .map_err(|_| bad(path, format!("line 1: bad w0_ns {w0:?}")))?,
            _ => {
                return Err(bad(
                    path,
                    format!("line 1: not a {ROUTES_FORMAT} {ROUTES_VERSION} file"),
                ));
            }
        };
        let mut r = Routes {
            w0_ns,
            ..Routes::default()
        };
        for (n, line) in lines {
            let line = line.map_err(|e| io(path, e))?;
            r.line(&line)
                .map_err(|d| bad(path, format!("line {}: {d}", n + 1)))?;
        }
        Ok(r)
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        if let ["input", i, name] = f[..] {
            if i.parse::<usize>().ok() != Some(self.inputs.len()) {
                return Err(format!("input {i} out of order"));
            }
            let name: String =
                serde_json::from_str(name).map_err(|e| format!("input name: {e}"))?;
            self.inputs.push(name);
            return Ok(());
        }
        let [i, frame, seq, home] = f[..] else {
            return Err("not 4 fields".into());
        };
        let i: u32 = i.parse().map_err(|_| format!("bad input index {i:?}"))?;
        if i as usize >= self.inputs.len() {
            return Err(format!("input {i} not declared"));
        }
        let frame = frame.parse().map_err(|_| format!("bad frame {frame:?}"))?;
        let seq = seq.parse().map_err(|_| format!("bad seq {seq:?}"))?;
        let home = u64::from_str_radix(home, 16).map_err(|_| format!("bad home {home:?}"))?;
        self.homes.insert((i, frame, seq), home);
        Ok(())
    }

    /// Reads `path` for a run under W0 `w0_ns` of the inputs `names` (in
    /// its order): the routes and each input's index in them. Routes of
    /// another W0, or without one of the inputs, are refused.
    pub fn load_for(
        path: &Path,
        w0_ns: i64,
        names: &[String],
    ) -> Result<(Routes, Vec<u32>), Error> {
        let r = Routes::load(path)?;
        if r.w0_ns != w0_ns {
            return Err(bad(
                path,
                format!(
                    "routes decided under W0 {} ns, the policy's W0 is {w0_ns} ns: run route-records with the same policy",
                    r.w0_ns
                ),
            ));
        }
        let index = r.index_of(path, names)?;
        Ok((r, index))
    }

    /// For each of `names` (a run's inputs, in its order), its index in
    /// these routes; an input the routes were not decided over is an error.
    pub fn index_of(&self, path: &Path, names: &[String]) -> Result<Vec<u32>, Error> {
        let at: BTreeMap<&str, u32> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        names
            .iter()
            .map(|n| {
                at.get(n.as_str()).copied().ok_or_else(|| {
                    bad(
                        path,
                        format!("routes decided without input {n}: run route-records over the whole batch"),
                    )
                })
            })
            .collect()
    }

    /// The home of record (`input`, `frame`, `seq`) whose own key is `key`.
    pub fn home(&self, input: u32, frame: u64, seq: u32, key: u64) -> u64 {
        self.homes.get(&(input, frame, seq)).copied().unwrap_or(key)
    }

    /// Moved records.
    pub fn len(&self) -> usize {
        self.homes.len()
    }

    /// No moved record.
    pub fn is_empty(&self) -> bool {
        self.homes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_back_and_refused_for_another_w0_or_input() {
        let dir = std::env::temp_dir().join(format!("sipaudit-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("routes.tsv");
        std::fs::write(
            &p,
            "sipaudit-routes\t1\tw0_ns\t32\ninput\t0\t\"a\\tb.pcap\"\ninput\t1\t\"c.pcap\"\n1\t7\t0\t00000000000000ff\n",
        )
        .unwrap();
        let names = vec!["c.pcap".to_string(), "a\tb.pcap".to_string()];
        let (r, index) = Routes::load_for(&p, 32, &names).unwrap();
        assert_eq!(index, [1, 0]);
        assert_eq!(r.len(), 1);
        assert_eq!(r.home(1, 7, 0, 5), 0xff, "moved");
        assert_eq!(r.home(0, 7, 0, 5), 5, "another input's frame 7 stays");
        let e = Routes::load_for(&p, 33, &names).unwrap_err().to_string();
        assert!(e.contains("W0 32 ns"), "{e}");
        let e = Routes::load_for(&p, 32, &["d.pcap".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("without input d.pcap"), "{e}");
        std::fs::write(&p, "sipaudit-routes\t1\tw0_ns\t32\n0\t7\t0\tff\n").unwrap();
        let e = Routes::load(&p).unwrap_err().to_string();
        assert!(e.contains("line 2: input 0 not declared"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
