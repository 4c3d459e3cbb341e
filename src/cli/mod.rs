//! The `biprop` command line, a thin layer over the library: one module per
//! subcommand, each a parser of its arguments and a call into the library.
//! The binary (`src/main.rs`) and the Python package's `biprop` command both
//! run [`main_with_args`], so the two are the same program.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Prints to stdout; a closed pipe (`biprop report DIR | head`) ends the
/// program quietly instead of panicking.
pub(crate) fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|_| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

macro_rules! say {
    ($($t:tt)*) => { $crate::cli::say(format_args!($($t)*)) };
}

mod bench;
mod compare;
mod generate;
mod report;
mod settings;
mod sweep;
mod train;

use bench::BenchArgs;
use compare::CompareArgs;
use generate::GenerateArgs;
use sweep::SweepArgs;
use train::TrainArgs;

/// Train neural networks with backpropagation and its biologically
/// plausible alternatives (FA, DFA, BFA, BDFA), and measure them side by side.
#[derive(Parser)]
#[command(name = "biprop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every rule side by side in a few minutes: a quick protocol, one table of test error and alignment, plots.
    Compare(Box<CompareArgs>),
    /// Train one network (defaults: BP, 784-800-10 tanh, sigmoid-BCE, SGD lr 0.0128, batch 128, 20 epochs, MNIST).
    Train(Box<TrainArgs>),
    /// Render what a trained BFA feedback network generates from labels (the paper's Figure 6).
    Generate(GenerateArgs),
    /// Run every unfinished cell of a sweep file (resumes after any interruption).
    Sweep(SweepArgs),
    /// Print a sweep folder's results as the paper's tables (mean ± std over seeds).
    Report {
        /// A sweep's output folder, or any folder of run directories.
        dir: PathBuf,
        /// Also write one CSV row per data set, architecture and rule here.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Choose this setting's value (e.g. lr) for each data set, architecture and rule on the validation split, and report only the chosen runs.
        #[arg(long, value_name = "KEY")]
        select: Option<String>,
    },
    /// Plot learning curves and alignment angles of the runs in a folder (PNG and SVG).
    Plot {
        /// A sweep's output folder, or any folder of run directories.
        dir: PathBuf,
        /// Where the plots go (default: DIR/plots).
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Measure training throughput per rule, architecture and thread count, against the machine's peaks.
    Bench(BenchArgs),
    /// Download MNIST into the cache (or check that it is there).
    Download {
        /// Cache folder (default: $BIPROP_CACHE, else ~/.cache/biprop).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
}

/// Runs the command line on `args` (the program name first, as in
/// `std::env::args_os`) and returns the process's exit code: 0 on success,
/// 1 after printing `error: ...` on stderr, 2 for a usage error (clap's).
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0, usage errors to stderr with 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Compare(args) => compare::compare(*args),
        Command::Train(args) => train::train(*args),
        Command::Generate(args) => generate::generate(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Bench(args) => bench::bench(args),
        Command::Report { dir, csv, select } => report::report(dir, csv, select),
        Command::Plot { dir, out } => report::plot(dir, out),
        Command::Download { cache } => report::download(cache),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests;
