//! The `sipaudit` binary: command line → [`sipaudit::pipeline::run`] → exit
//! status (0: every input read to its end; 1: some input unreadable,
//! truncated or skipped; 2: nothing analysed, including an invalid
//! `--policy`). `sipaudit policy check|example` validates and documents
//! policy files (rules.md §E.3).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod allocator;
mod progress;

use clap::{Parser, Subcommand, ValueEnum};
use sipaudit::pipeline::{self, Config, RunSummary};
use sipaudit::rules::catalogue::{self, reference};
use sipaudit::rules::policy::{EXAMPLE_TOML, Policy};

/// `--version`: the crate version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIPAUDIT_COMMIT"),
    ")"
);

/// Offline SIP trace analyzer: rebuilds SIP from pcap/pcapng captures and
/// reports capability failures and relaxation retries (3GPP TS 23.228 §5.4.2).
#[derive(Parser, Debug)]
#[command(name = "sipaudit", version = VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyze captures (files or directories, one batch) and write CSV reports.
    Analyze(AnalyzeArgs),
    /// Write per-session pcaps: every frame that carried a message of each
    /// selected session, from every input, in capture-time order, original
    /// bytes and timestamps (pcapng when the frames' link types differ).
    Extract(ExtractArgs),
    /// Write the message records of each capture (the map step of a
    /// distributed run, docs/records.md): `<DIR>/<input file name>.records.parquet`,
    /// one row per SIP message; `analyze --records` reads them back.
    ExtractRecords(ExtractRecordsArgs),
    /// Decide, over the records of a whole batch, which B2BUA/AS legs are tracked with the first leg they are tied to (the routes `analyze --records --partition K/N --routes FILE` cuts partitions by; docs/records.md "Routes").
    RouteRecords(RouteRecordsArgs),
    /// Merge the output directories of `analyze --records --partition K/N` (one per K, all N of them) into the reports of the whole batch (docs/records.md).
    MergeReports(MergeReportsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `sipaudit man > sipaudit.1`).
    Man,
    /// Print the call ladder of one session as text, from the reports of an
    /// earlier `analyze --messages` run (colour only on a terminal).
    Flow {
        /// The output directory of that run.
        #[arg(value_name = "OUTDIR")]
        out: PathBuf,
        /// The session id (sessions.csv `session`).
        #[arg(value_name = "SESSION")]
        session: u64,
    },
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
    /// Threads (default: all available cores): each file being read has its own thread (at most N files ahead of need); session tracking runs as 16 partitions on the main thread, and from 3 on a pool of N threads one batch behind the routing of the next (at 2 too while no session finishes: a capture's first seconds, a scanner burst); from 2, finished sessions are evaluated on a thread of their own, at a lower priority; from 3, a file of 1 MiB or more is decoded in 4 lanes on N-1 threads (plain UDP spread over them), and from 4 a smaller one with N-3 helpers digesting its messages. Output is identical for every value.
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Also write messages.csv (one row per SIP message; large).
    #[arg(long)]
    messages: bool,
    /// Progress on stderr: bytes read over all inputs (compressed bytes for compressed files) with rate and ETA. auto: a bar only when stderr is a terminal; always: also when it is not (then a plain line every few seconds and one at the end); never.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
    /// Home-network policy (TOML, rules.md §E.3). Without it the built-in
    /// default applies (`sipaudit policy check` on a file shows the effective
    /// values; `sipaudit policy example` prints an annotated one).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Do not write report.html.
    #[arg(long)]
    no_html: bool,
    /// Memory budget in MB (default 256; 0: none). Above a quarter of it, lone
    /// requests that only wait (no answer, no link; a scanner's INVITEs)
    /// are kept in spill files in the output's temporary directory until
    /// something of theirs comes; the reports are the same either way.
    #[arg(long, value_name = "MB", default_value_t = 256)]
    memory: u64,
    /// Sessions of report.html's attention table that get a ladder (the
    /// worst first; the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 500)]
    html_sessions: usize,
    /// Also write `<DIR>/<session>.pcap` for each session of report.html's
    /// table (as `sipaudit extract` does); report.html links to them.
    #[arg(long, value_name = "DIR")]
    pcap_dir: Option<PathBuf>,
    /// Report formats, comma-separated: `csv` (always written) and `parquet` (also sessions, failures, messages and summary as typed, zstd-compressed Parquet files converted from the CSVs; README, "Typed reports").
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "csv",
        value_name = "LIST"
    )]
    format: Vec<Format>,
    /// The inputs are records files or directories of them (`extract-records`; `*.records.parquet`), not captures: the reports are those of analyze on the captures they were extracted from.
    #[arg(long, conflicts_with_all = ["messages", "pcap_dir"])]
    records: bool,
    /// With --records: keep only the messages of partition K of N (0 <= K < N) of the partition key (docs/records.md).
    #[arg(long, value_name = "K/N", requires = "records", value_parser = parse_partition)]
    partition: Option<(usize, usize)>,
    /// With --records: the homes of B2BUA/AS legs, decided by `route-records` over the whole batch; each message then belongs to the partition of its home, so every leg one run tracks together is in one partition (docs/records.md "Routes").
    #[arg(long, value_name = "FILE", requires = "records")]
    routes: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("select").required(true).multiple(true)
    .args(["session", "attention_min", "verdict"])))]
struct ExtractArgs {
    /// Capture files or directories: the same batch as the analyze run
    /// (sessions are rebuilt from them).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Directory for the pcaps, `<DIR>/<session>.pcap` (created if missing).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Sessions by id (sessions.csv `session`); repeat or comma-separate.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    session: Vec<u64>,
    /// Every session whose attention (sessions.csv) is at least N.
    #[arg(long, value_name = "N")]
    attention_min: Option<u32>,
    /// Every session with this verdict; repeat or comma-separate.
    #[arg(long, value_name = "VERDICT", value_delimiter = ',')]
    verdict: Vec<String>,
    /// Home-network policy, as for analyze (it decides verdicts and attention).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Threads, as for analyze.
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Also take each session's RTP and RTCP: UDP packets between the addresses and ports its SDP offers and answers name (m= port on the c= address; a=rtcp, else port + 1), from its first SIP message to 3 s after its last.
    #[arg(long)]
    media: bool,
}

#[derive(clap::Args, Debug)]
struct ExtractRecordsArgs {
    /// Capture files or directories, as for analyze.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Directory for the records files (created if missing). Inputs with the same file name in different directories get a hash of their path in the name.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Threads: each input is written on a thread of its own and, from 2, decoded in 4 lanes on N threads (1 MiB or more), or on one with N-2 helpers digesting its messages from N = 3.
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
}

#[derive(clap::Args, Debug)]
struct RouteRecordsArgs {
    /// Records files or directories of them: every input of the batch (files cut down to the routing columns are enough).
    #[arg(required = true, value_name = "RECORDS")]
    inputs: Vec<PathBuf>,
    /// The routes file to write.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
    /// Home-network policy, as for analyze (its W0 bounds the legs tied together).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct MergeReportsArgs {
    /// The output directories of the partition runs (or their partition.jsonl).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Output directory for the merged reports.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Report formats, comma-separated: csv (always written), parquet.
    #[arg(long, value_delimiter = ',', default_value = "csv")]
    format: Vec<Format>,
}

/// `--partition K/N`: partition K (0-based) of N.
fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not K/N (e.g. 0/4)"))?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| format!("{k:?} is not a number"))?,
        n.parse().map_err(|_| format!("{n:?} is not a number"))?,
    );
    if n == 0 || k >= n {
        return Err(format!("K/N needs 0 <= K < N (got {s})"));
    }
    Ok((k, n))
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
        Command::Extract(a) => extract(a),
        Command::ExtractRecords(a) => extract_records(a),
        Command::RouteRecords(a) => route_records(a),
        Command::MergeReports(a) => merge_reports(a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "sipaudit", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(Cli::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sipaudit: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Flow { out, session } => {
            let colour = std::io::stdout().is_terminal();
            match sipaudit::report::flow::flow(&out, session, colour) {
                Ok(text) => {
                    use std::io::Write;
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sipaudit: {e}");
                    ExitCode::from(2)
                }
            }
        }
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

/// The policy of `--policy`, or the built-in one; exit 2 when invalid.
fn load_policy(path: &Option<PathBuf>) -> Result<Policy, ExitCode> {
    match path {
        None => Ok(Policy::builtin()),
        Some(path) => Policy::load(path).map_err(|e| {
            eprintln!("sipaudit: invalid policy: {e}");
            ExitCode::from(2)
        }),
    }
}

fn extract(a: ExtractArgs) -> ExitCode {
    use sipaudit::pipeline::extract::{self, Selection};
    let policy = match load_policy(&a.policy) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let sel = if !a.session.is_empty() {
        Selection::Sessions(a.session)
    } else if let Some(n) = a.attention_min {
        Selection::AttentionMin(n)
    } else {
        Selection::Verdicts(a.verdict)
    };
    let cfg = Config {
        inputs: a.inputs,
        jobs: a.jobs,
        policy: Arc::new(policy),
        ..Config::default()
    };
    match extract::extract(&cfg, &sel, &a.out, a.media) {
        Ok((run, written)) => {
            eprintln!(
                "sipaudit: {} session pcaps in {}",
                written.len(),
                a.out.display()
            );
            batch_exit(&run)
        }
        Err(e) => {
            eprintln!("sipaudit: {e}");
            ExitCode::from(2)
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
    let policy = match load_policy(&a.policy) {
        Ok(p) => p,
        Err(c) => return c,
    };
    // Records files are listed by the reduce step itself (no progress bar).
    let inputs = if a.records {
        None
    } else {
        match pipeline::inputs_to_analyse(&a.inputs) {
            Ok(i) => Some(i),
            Err(e) => {
                eprintln!("sipaudit: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let (counter, display) = match &inputs {
        Some(inputs) => progress_bar(a.progress, inputs),
        None => (None, None),
    };
    let cfg = Config {
        inputs: a.inputs,
        out_dir: a.out,
        jobs: a.jobs,
        messages: a.messages,
        parquet: a.format.contains(&Format::Parquet),
        progress: counter,
        policy: Arc::new(policy),
        html: (!a.no_html).then_some(a.html_sessions),
        table: a.html_sessions,
        pcap_dir: a.pcap_dir,
        report_dir: None,
        partition_log: None,
        routed: false,
        memory: (a.memory > 0).then(|| a.memory.saturating_mul(1 << 20)),
    };
    let res = if a.records {
        pipeline::records::run_records(&cfg, a.partition, a.routes.as_deref())
    } else {
        pipeline::run(&cfg)
    };
    if let Some(d) = display {
        d.finish();
    }
    match res {
        Ok(s) => {
            print_summary(&s, &cfg);
            batch_exit(&s)
        }
        Err(e) => {
            eprintln!("sipaudit: {e}");
            ExitCode::from(2)
        }
    }
}

/// The progress bar of `analyze` over `inputs` when `--progress` asks for
/// it (by default, when stderr is a terminal): the byte counter the readers
/// advance, and the bar that shows it. The bar counts the bytes of the
/// files as they are on disk.
fn progress_bar(
    when: Progress,
    inputs: &[pipeline::Input],
) -> (
    Option<sipaudit::capture::ByteCounter>,
    Option<progress::Display>,
) {
    let show = match when {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if !show {
        return (None, None);
    }
    let counter = sipaudit::capture::ByteCounter::default();
    let total = inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.path).ok())
        .map(|m| m.len())
        .sum();
    let display = progress::start(total, counter.clone(), std::io::stderr().is_terminal());
    (Some(counter), Some(display))
}

fn extract_records(a: ExtractRecordsArgs) -> ExitCode {
    let cfg = Config {
        inputs: a.inputs,
        jobs: a.jobs,
        ..Config::default()
    };
    match pipeline::records::extract_records(&cfg, &a.out) {
        Ok(s) => {
            eprintln!(
                "sipaudit: {} file(s) ({} with errors), {} packets, {} SIP messages; records in {} ({:.3} s)",
                s.files,
                s.failed_files.len(),
                s.packets,
                s.sip_messages,
                a.out.display(),
                s.elapsed.as_secs_f64()
            );
            batch_exit(&s)
        }
        Err(e) => {
            eprintln!("sipaudit: {e}");
            ExitCode::from(2)
        }
    }
}

fn route_records(a: RouteRecordsArgs) -> ExitCode {
    let policy = match load_policy(&a.policy) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let w0 = i64::try_from(policy.window_ns()).unwrap_or(i64::MAX);
    match pipeline::routes::route_records(&a.inputs, w0, &a.out) {
        Ok(s) => {
            eprintln!(
                "sipaudit: {} records file(s), {} records, {} routed to another leg's home; routes in {}",
                s.inputs,
                s.records,
                s.moved,
                a.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipaudit: {e}");
            ExitCode::from(2)
        }
    }
}

fn merge_reports(a: MergeReportsArgs) -> ExitCode {
    let parquet = a.format.contains(&Format::Parquet);
    match pipeline::merge_reports::merge_reports(&a.dirs, &a.out, parquet) {
        Ok(m) => {
            eprintln!(
                "sipaudit: {} partition(s) merged, {} sessions; reports in {} ({:.3} s)",
                m.partitions,
                m.sessions,
                a.out.display(),
                m.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
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

/// The run's summary on stderr: what was read, the sessions and verdicts,
/// what the run had to spill, and how fast it went.
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
    print_counts(s);
    eprintln!("  policy: {}", cfg.policy.name());
    print_spills(s);
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
        eprintln!("  anomalies: {}", counts(&s.anomalies));
    }
    eprintln!(
        "  {:.3} s, {:.0} packets/s, {:.1} MB/s; reports in {}",
        secs,
        s.packets as f64 / secs,
        s.bytes as f64 / secs / 1e6,
        cfg.out_dir.display()
    );
}

/// `name count` pairs, comma-separated.
fn counts<K: std::fmt::Display, V: std::fmt::Display>(
    c: impl IntoIterator<Item = (K, V)>,
) -> String {
    let list: Vec<String> = c.into_iter().map(|(k, v)| format!("{k} {v}")).collect();
    list.join(", ")
}

/// [`counts`] of a list of pairs.
fn pairs(c: &[(String, u64)]) -> String {
    counts(c.iter().map(|(k, v)| (k, v)))
}

/// The sessions by outcome and verdict, and the capability failures by
/// verdict.
fn print_counts(s: &RunSummary) {
    let sep = |c: &str| if c.is_empty() { "" } else { ": " };
    let outcomes = pairs(&s.outcomes);
    eprintln!("  {} sessions{}{outcomes}", s.sessions, sep(&outcomes));
    if !s.verdicts.is_empty() {
        eprintln!("  session verdicts: {}", pairs(&s.verdicts));
    }
    let failures: u64 = s.failure_verdicts.iter().map(|(_, v)| v).sum();
    let fv = pairs(&s.failure_verdicts);
    eprintln!("  {failures} capability failures{}{fv}", sep(&fv));
}

/// What the run kept on disk for a while: cold sessions, sorted runs.
fn print_spills(s: &RunSummary) {
    if s.cold_sessions > 0 {
        eprintln!(
            "  memory budget: {} waiting sessions were kept on disk for a while (--memory)",
            s.cold_sessions
        );
    }
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
}

/// The exit status of a finished batch: 0 when every input was read to its
/// end, 1 when some input was unreadable, truncated or skipped.
fn batch_exit(run: &RunSummary) -> ExitCode {
    if run.failed_files.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
