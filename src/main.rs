//! The `sipaudit` binary: command line → [`sipaudit::pipeline::run`] → exit
//! status (0: every input read to its end; 1: some input unreadable,
//! truncated or skipped; 2: nothing analysed, including an invalid
//! `--policy`). `sipaudit policy check|example` validates and documents
//! policy files (rules.md §E.3).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

mod allocator;

use clap::{Parser, Subcommand, ValueEnum};
use sipaudit::pipeline::{self, Config, RunSummary};
use sipaudit::rules::catalogue::{self, reference};
use sipaudit::rules::policy::{EXAMPLE_TOML, Policy};

/// Offline SIP trace analyzer: rebuilds SIP from pcap/pcapng captures and
/// reports capability failures and relaxation retries (3GPP TS 23.228 §5.4.2).
#[derive(Parser, Debug)]
#[command(name = "sipaudit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyze captures (files or directories, one batch) and write CSV reports.
    Analyze(AnalyzeArgs),
    /// Home-network policy files (rules.md §E.3): validate one, or print an example.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Explain a verdict, flag, failure class, policy verdict or outcome of
    /// the reports (docs/reference.md holds them all).
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    /// The name as written in a report, e.g. COMPLIANT_RELAXATION,
    /// NEW_CALL_ID(H2,0.8) or POLICY_VIOLATION:DEST_IMS (case-insensitive).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    name: Option<String>,
    /// Print the whole reference (docs/reference.md).
    #[arg(long, conflicts_with = "name")]
    all: bool,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Validate a policy file and print the effective policy (every key, the
    /// omitted ones from the built-in default). Exit 2 with the line and key
    /// of the first error.
    Check {
        /// The policy file (TOML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print an annotated example policy (every key explained).
    Example,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Capture files or directories (recursed in sorted order). pcap or pcapng,
    /// optionally gzip- or zstd-compressed; recognised by content, not name.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Output directory (created if missing). Its reports are replaced all at once when the run ends; a failed or killed run leaves them as they were; reports of sipaudit's names the run did not write are removed.
    #[arg(short, long, default_value = "sipaudit-out", value_name = "DIR")]
    out: PathBuf,
    /// Threads (default: all available cores): each file being read has its own thread (at most N files ahead of need) and the session tracker another; from 3, finished sessions are evaluated on a thread of their own and N-3 helpers digest the messages of each file being read. Output is identical for every value.
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Also write messages.csv (one row per SIP message; large).
    #[arg(long)]
    messages: bool,
    /// Progress bar on stderr (auto: only when stderr is a terminal).
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
    /// Home-network policy (TOML, rules.md §E.3). Without it the built-in
    /// default applies (`sipaudit policy check` on a file shows the effective
    /// values; `sipaudit policy example` prints an annotated one).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Report formats, comma-separated: `csv` (always written) and `parquet` (also sessions, failures, messages and summary as typed, zstd-compressed Parquet files converted from the CSVs; README, "Typed reports").
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "csv",
        value_name = "LIST"
    )]
    format: Vec<Format>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Progress {
    Auto,
    Always,
    Never,
}

static BAR: OnceLock<indicatif::ProgressBar> = OnceLock::new();

fn tick() {
    if let Some(b) = BAR.get() {
        b.inc(1);
    }
}

fn main() -> ExitCode {
    allocator::tune();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Policy { command } => policy_command(command),
        Command::Explain(a) => explain(a),
    }
}

fn explain(a: ExplainArgs) -> ExitCode {
    if a.all {
        println!("{}", reference::markdown());
        return ExitCode::SUCCESS;
    }
    let name = a.name.unwrap_or_default();
    let entries = catalogue::lookup(&name);
    if entries.is_empty() {
        let close = catalogue::suggest(&name);
        if close.is_empty() {
            eprintln!(
                "sipaudit: {name:?} is not a verdict, flag, class, policy verdict or outcome (see docs/reference.md)"
            );
        } else {
            eprintln!(
                "sipaudit: {name:?} is not a verdict, flag, class, policy verdict or outcome; did you mean {}?",
                close.join(", ")
            );
        }
        return ExitCode::from(2);
    }
    let text: Vec<String> = entries.into_iter().map(reference::entry_text).collect();
    print!("{}", text.join("\n"));
    ExitCode::SUCCESS
}

fn policy_command(c: PolicyCommand) -> ExitCode {
    match c {
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(p) => {
                print!("{}", p.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sipaudit: invalid policy: {e}");
                ExitCode::from(2)
            }
        },
        PolicyCommand::Example => {
            print!("{EXAMPLE_TOML}");
            ExitCode::SUCCESS
        }
    }
}

fn analyze(a: AnalyzeArgs) -> ExitCode {
    if !a.format.contains(&Format::Csv) {
        eprintln!(
            "sipaudit: --format must include csv (e.g. --format csv,parquet): the Parquet files are converted from the CSV reports"
        );
        return ExitCode::from(2);
    }
    // The policy first: an invalid one stops the run before anything is read.
    let policy = match &a.policy {
        None => Policy::builtin(),
        Some(path) => match Policy::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("sipaudit: invalid policy: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let inputs = match pipeline::inputs_to_analyse(&a.inputs) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("sipaudit: {e}");
            return ExitCode::from(2);
        }
    };
    let show = match a.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if show {
        let bar = indicatif::ProgressBar::new(inputs.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let _ = BAR.set(bar);
    }
    let cfg = Config {
        inputs: a.inputs,
        out_dir: a.out,
        jobs: a.jobs,
        messages: a.messages,
        parquet: a.format.contains(&Format::Parquet),
        on_file_done: show.then_some(tick as fn()),
        policy: Arc::new(policy),
    };
    let res = pipeline::run(&cfg);
    if let Some(b) = BAR.get() {
        b.finish_and_clear();
    }
    match res {
        Ok(s) => {
            print_summary(&s, &cfg);
            if s.failed_files.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("sipaudit: {e}");
            ExitCode::from(2)
        }
    }
}

/// A duration in nanoseconds as seconds, without a fraction when whole.
fn seconds_text(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000).to_string()
    } else {
        format!("{:.3}", ns as f64 / 1e9)
    }
}

fn print_summary(s: &RunSummary, cfg: &Config) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "sipaudit: {} file(s) ({} with errors), {} packets ({} SIP, {} other, {} undecodable), {} SIP messages ({} retransmitted or duplicated)",
        s.files,
        s.failed_files.len(),
        s.packets,
        s.sip_packets,
        s.other_packets,
        s.undecodable_packets,
        s.sip_messages,
        s.retransmissions
    );
    let outcomes: Vec<String> = s.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "  {} sessions{}{}",
        s.sessions,
        if outcomes.is_empty() { "" } else { ": " },
        outcomes.join(", ")
    );
    let verdicts: Vec<String> = s.verdicts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !verdicts.is_empty() {
        eprintln!("  session verdicts: {}", verdicts.join(", "));
    }
    let failures: u64 = s.failure_verdicts.iter().map(|(_, v)| v).sum();
    let fv: Vec<String> = s
        .failure_verdicts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "  {failures} capability failures{}{}",
        if fv.is_empty() { "" } else { ": " },
        fv.join(", ")
    );
    eprintln!("  policy: {}", cfg.policy.name());
    if s.spill_runs > 0 {
        eprintln!(
            "  sessions.csv merged from {} sorted run files (long-lived sessions held others back)",
            s.spill_runs
        );
    }
    if s.anomaly_spill_runs > 0 {
        eprintln!(
            "  anomalies.csv sorted through {} run files (many anomalies)",
            s.anomaly_spill_runs
        );
    }
    if s.window_cut_failures > 0 {
        // RETRY_WINDOW_CUT (rules.md §D.3 item 4): NO_RETRY is not certain.
        eprintln!(
            "  {} failures had less than {} s of capture after them: their retry may be missing",
            s.window_cut_failures,
            seconds_text(cfg.policy.window_ns())
        );
    }
    for f in &s.failed_files {
        eprintln!("  not read to its end: {f}");
    }
    if !s.anomalies.is_empty() {
        let list: Vec<String> = s
            .anomalies
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        eprintln!("  anomalies: {}", list.join(", "));
    }
    eprintln!(
        "  {:.3} s, {:.0} packets/s, {:.1} MB/s; reports in {}",
        secs,
        s.packets as f64 / secs,
        s.bytes as f64 / secs / 1e6,
        cfg.out_dir.display()
    );
}
