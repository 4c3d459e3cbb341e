//! The `biprop` command line: a thin layer over the library.

use anyhow::{bail, Context, Result};
use biprop::activation::Activation;
use biprop::config::{parse_hidden, RunConfig};
use biprop::data::DatasetKind;
use biprop::loss::Output;
use biprop::optim::OptimizerKind;
use biprop::rules::{BdfaTarget, BdfaUpdate, FeedbackScale, InitScheme, RuleKind};
use biprop::run::InitFrom;
use biprop::run::{self, RunOptions};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Prints to stdout; a closed pipe (`biprop report DIR | head`) ends the
/// program quietly instead of panicking.
fn say(text: std::fmt::Arguments<'_>) {
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
    ($($t:tt)*) => { say(format_args!($($t)*)) };
}

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

#[derive(Args)]
struct CompareArgs {
    /// Rules to compare, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    rules: Vec<RuleKind>,
    /// Runs at once (default: one per core, each on one thread).
    #[arg(long, short = 'J')]
    jobs: Option<usize>,
    /// Output folder (a sweep folder: `biprop report` and `plot` read it).
    #[arg(long, short = 'o', default_value = "runs/compare")]
    out: PathBuf,
    /// Delete an earlier comparison in --out first.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Any run setting, over the quick protocol (784-800-10 tanh,
    /// sigmoid-BCE, SGD momentum 0.9, lr 0.05, batch 128, 5 epochs).
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// Architectures (repeatable).
    #[arg(long, default_values = ["1x800", "2x800"])]
    hidden: Vec<String>,
    /// Rules (repeatable; default: every rule).
    #[arg(long, value_enum)]
    rule: Vec<RuleKind>,
    /// Thread counts (repeatable; 0 = every core).
    #[arg(long, default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// Seconds of timed steps per cell.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Also time this many one-thread runs at once, as a sweep runs them, and
    /// report their summed throughput against the peak of as many cores.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Measure every cell this many times, in interleaved passes, and report
    /// the median (peaks: the best), so that a slow spell of a shared machine
    /// does not land on one cell only.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    passes: u16,
    /// GEMM kernels of the step rows (auto: this CPU's). The per-product table
    /// measures every backend whatever this says.
    #[arg(long, value_enum, default_value_t = biprop::tensor::GemmBackend::Auto)]
    gemm: biprop::tensor::GemmBackend,
    /// Also time every product inside 50 steps of each thread-count cell and
    /// print where a step's time goes.
    #[arg(long)]
    breakdown: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct SweepArgs {
    /// The sweep file (TOML: [base] settings and a [grid] of lists).
    file: PathBuf,
    /// Runs at once (default: one per core, each on one thread).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Run only cell I (0-based), e.g. from a job-array index.
    #[arg(long, value_name = "I")]
    task: Option<usize>,
    /// Output folder (default: the file's `out`, else sweeps/<file stem>).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// List the cells (index, id, done or not) and exit.
    #[arg(long)]
    list: bool,
    /// Copy the finished cells' small files (config.toml, metrics.csv, done;
    /// never checkpoints) into DIR/<cell id>/ and exit: what a project commits.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["list", "task"])]
    export: Option<PathBuf>,
    /// Before running, mark finished every cell whose DIR/<cell id>/ holds a
    /// finished run of its settings (from --export), so it never runs twice.
    #[arg(long, value_name = "DIR")]
    import: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Write an sbatch script (OUT/slurm/array.sbatch) whose job array has one
    /// task per unfinished cell, each running `biprop sweep FILE --task ID`.
    #[arg(long, conflicts_with_all = ["list", "task", "export"])]
    slurm: bool,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// With --slurm: each task's time limit (default: the largest unfinished
    /// cell's estimate from its FLOPs, generously).
    #[arg(long, requires = "slurm", value_name = "TIME")]
    time: Option<String>,
    /// With --slurm: CPUs per task.
    #[arg(long, requires = "slurm", value_name = "N")]
    cpus_per_task: Option<u32>,
    /// With --slurm: memory per task (default 2G, 4G for CIFAR-10).
    #[arg(long, requires = "slurm", value_name = "MEM")]
    mem: Option<String>,
    /// With --slurm: at most N tasks at once (--array=...%N).
    #[arg(long, requires = "slurm", value_name = "N")]
    array_throttle: Option<u32>,
    /// With --slurm: the job name (default biprop-<file stem>).
    #[arg(long, requires = "slurm")]
    job_name: Option<String>,
    /// With --slurm: an extra #SBATCH option, verbatim (repeatable), e.g. --sbatch=--account=lab.
    #[arg(long, requires = "slurm", value_name = "OPTION")]
    sbatch: Vec<String>,
}

#[derive(Args)]
struct GenerateArgs {
    /// A run directory or a checkpoint file of a BFA run.
    run: PathBuf,
    /// The PNG to write (default: RUN/generated.png, or RUN/reconstructions.png).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Label mixtures to render instead of the one-hot vectors, e.g. --mix 3:0.5,8:0.5 (repeatable).
    #[arg(long, value_name = "CLASS:WEIGHT,...", conflicts_with = "reconstruct")]
    mix: Vec<String>,
    /// Render the first N test images beside feedback(forward(x)) instead (N >= 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    reconstruct: Option<u32>,
    /// Data folder for --reconstruct (default: the run's, or $BIPROP_DATA).
    #[arg(long, value_name = "DIR", requires = "reconstruct")]
    data_dir: Option<PathBuf>,
    /// Screen pixels per image pixel (1 to 32).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    scale: u32,
}

/// Every run setting as a flag: each one is named as its config key (with
/// dashes), serializes under that key into a table of overrides, and reaches
/// the run only through [`RunConfig::from_layers`]: a flag whose key the
/// config does not know is an error there, and the tests check that every
/// key has a flag and every flag lands.
#[derive(Args, Default, serde::Serialize)]
struct SettingsArgs {
    /// Learning rule.
    #[arg(long, short = 'r', value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleKind>,
    /// Hidden layers: 800 | 800,400 | 2x800 | none.
    #[arg(long, value_name = "WIDTHS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<String>,
    /// Hidden nonlinearity.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    /// Output layer and loss.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Output>,
    /// Initialization scheme (reference = the published code's: zero forward
    /// weights for FA's upper layers and for DFA/BDFA, FA's B copied from W).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<InitScheme>,
    /// Scale of random feedback (every rule with random B, D or M): sender = 1/sqrt(width
    /// of the error carried), receiver = 1/sqrt(width of the layer reached),
    /// the published code's [default: sender, receiver with --init reference].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_scale: Option<FeedbackScale>,
    /// Passes over the training set.
    #[arg(long, short = 'e')]
    #[serde(skip_serializing_if = "Option::is_none")]
    epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, short = 'b')]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (on the mean gradient of a batch).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr: Option<f32>,
    /// SGD momentum.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum: Option<f32>,
    /// L2 weight decay.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_decay: Option<f32>,
    /// Adam's beta1.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta1: Option<f32>,
    /// Adam's beta2.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta2: Option<f32>,
    /// Adam's epsilon.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eps: Option<f32>,
    /// Seed for initialization and shuffling.
    #[arg(long, short = 's')]
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Threads (0 = all cores); the results are bitwise the same for every count.
    #[arg(long, short = 'j')]
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<usize>,
    /// Data set.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<DatasetKind>,
    /// Folder with the data files (default: $BIPROP_DATA, else download into the cache).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Number of classes of an idx data set.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<usize>,
    /// Training samples held out (from the end) for validation.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    val_size: Option<usize>,
    /// Train on only the first N training samples.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_limit: Option<usize>,
    /// Learning rate of learning feedback weights (BFA, BDFA, DKP; default: --lr,
    /// or 5e-5 on the summed update with --bdfa-update reference).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_lr: Option<f32>,
    /// Optimizer of learning feedback weights (default: --optimizer).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_optimizer: Option<OptimizerKind>,
    /// SGD momentum of learning feedback weights (default: --momentum).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_momentum: Option<f32>,
    /// BFA's reconstruction output.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bfa_output: Option<Output>,
    /// Scale of BFA's initial feedback weights that are error paths: sender (drawn as any layer) or receiver (1/sqrt(width of the layer they reach)).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bfa_feedback_scale: Option<FeedbackScale>,
    /// BDFA's feedback update: the paper's gradient or the published code's.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_update: Option<BdfaUpdate>,
    /// BDFA's target y': label, mixed (y + alpha*yhat), reference (published code).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_target: Option<BdfaTarget>,
    /// alpha of BDFA's mixed and reference targets.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_alpha: Option<f32>,
    /// Decay of forward and feedback weights for --rule kp and dkp (in place of --weight-decay).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kp_decay: Option<f32>,
    /// GEMM kernels: auto = this CPU's (gemm on Intel with AVX-512, faer elsewhere); the run records the one used.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    gemm: Option<biprop::tensor::GemmBackend>,
    /// Keep the training order fixed (shuffle = false).
    #[arg(long)]
    #[serde(
        rename = "shuffle",
        serialize_with = "negated",
        skip_serializing_if = "is_false"
    )]
    no_shuffle: bool,
    /// Skip the once-an-epoch alignment angles with BP (alignment = false).
    #[arg(long)]
    #[serde(
        rename = "alignment",
        serialize_with = "negated",
        skip_serializing_if = "is_false"
    )]
    no_alignment: bool,
}

fn negated<S: serde::Serializer>(v: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(!v)
}

fn is_false(v: &bool) -> bool {
    !v
}

impl SettingsArgs {
    /// The flags given, as config keys and values.
    fn overrides(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).context("command-line settings")
    }
}

#[derive(Args, Default)]
struct TrainArgs {
    /// TOML file with any run setting (flags override it).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Run directory (default: runs/RULE-HIDDEN-seedS, made unique).
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds an earlier run.
    #[arg(long)]
    force: bool,
    /// Continue the run in --out from its last checkpoint (same settings; --epochs may grow).
    #[arg(long, requires = "out", conflicts_with = "force")]
    resume: bool,
    /// Start from this checkpoint's weights: forward and feedback, of a run of
    /// the same rule and shapes; every tensor must fit and be used.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Start from this checkpoint's forward weights only (any rule, e.g. FA
    /// from a BP run); the feedback is drawn as usual.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["init_from", "resume"])]
    init_forward_from: Option<PathBuf>,
    /// No progress bar and no per-epoch lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// `--feedback-lr` for the key `feedback_lr`.
fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

impl TrainArgs {
    /// The configuration: defaults, then the TOML file, then the flags. A
    /// flag that would have no effect on this run is refused.
    fn resolve(&self) -> Result<RunConfig> {
        let mut layers = Vec::new();
        if let Some(p) = &self.config {
            layers.push(biprop::config::read_table(p)?);
        }
        let flags = self.settings.overrides()?;
        layers.push(flags.clone());
        let cfg = RunConfig::from_layers(&layers).map_err(|e| {
            // Name the flag when a flag's value is at fault.
            if let biprop::Error::Config(msg) = &e {
                if let Some((key, rest)) = msg.split_once(": ") {
                    if flags.contains_key(key) {
                        return anyhow::anyhow!("{}: {rest}", flag_of(key));
                    }
                }
            }
            match &self.config {
                Some(p) => anyhow::anyhow!("{e} (settings from {} and the flags)", p.display()),
                None => anyhow::anyhow!("{e}"),
            }
        })?;
        if let Some((key, why)) = cfg.first_unused_in(&flags) {
            bail!("{} has no effect on this run: {why}", flag_of(key));
        }
        Ok(cfg)
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let cfg = args.resolve()?;
    let out = match &args.out {
        Some(dir) => {
            if run::holds_run(dir) && !args.force && !args.resume {
                bail!(
                    "{} already holds a run; pass --resume to continue it, --force to overwrite it, or another --out",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => run::fresh_run_dir(&cfg.run_name()),
    };
    let splits = run::load_data(&cfg).context("loading the data")?;
    let interactive = std::io::stderr().is_terminal();
    if !args.quiet {
        eprintln!(
            "{} on {}: {} train / {} val / {} test samples, hidden {}, {} threads -> {}",
            cfg.rule,
            format!("{:?}", cfg.dataset).to_lowercase(),
            splits.train.len(),
            splits.val.len(),
            splits.test.len(),
            biprop::config::format_hidden(&cfg.hidden),
            run::resolve_threads(cfg.threads),
            out.display()
        );
        eprintln!("protocol: {}, {} epochs", protocol_line(&cfg), cfg.epochs);
        let paper_like =
            cfg.optimizer == OptimizerKind::Sgd && cfg.momentum == 0.0 && cfg.lr <= 0.0128;
        if paper_like && cfg.epochs < 300 {
            eprintln!(
                "note: the paper trains this protocol for 300 epochs (biprop sweep experiments/table1.toml); \
                 at 15 BP still trails the other rules on most architectures (docs/results/table1-short.md). For every rule side by side in minutes: biprop compare"
            );
        }
    }
    let opts = RunOptions {
        out_dir: Some(out.clone()),
        init_from: match (&args.init_from, &args.init_forward_from) {
            (Some(p), _) => Some(InitFrom::Everything(p.clone())),
            (None, Some(p)) => Some(InitFrom::ForwardOnly(p.clone())),
            (None, None) => None,
        },
        progress: interactive && !args.quiet,
        echo: !args.quiet,
        resume: args.resume,
        on_epoch: None,
        on_batch: None,
    };
    let summary = run::run(&cfg, &splits, &opts)?;
    if summary.records.is_empty() {
        say!(
            "nothing to train: the run in {} is complete ({} epochs)",
            out.display(),
            cfg.epochs
        );
    }
    if let Some(last) = summary.records.last() {
        say!(
            "final test error {:.2}% (val {:.2}%) after {} epochs; run saved in {}",
            100.0 * last.test_error,
            100.0 * last.val_error,
            last.epoch,
            out.display()
        );
    }
    Ok(())
}

fn compare(args: CompareArgs) -> Result<()> {
    use biprop::experiment::compare;
    let settings = args.settings.overrides()?;
    if settings.contains_key("rule") {
        bail!("compare runs several rules: choose them with --rules bp,fa,...");
    }
    let rules = if args.rules.is_empty() {
        RuleKind::ALL.to_vec()
    } else {
        args.rules.clone()
    };
    if args.force && args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("removing {}", args.out.display()))?;
    }
    let (_, shown) = compare::protocol(&settings)?;
    if !args.quiet {
        eprintln!(
            "comparing {} on {}: {}, {} epochs -> {}",
            rules
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
            shown.dataset.name(),
            protocol_line(&shown),
            shown.epochs,
            args.out.display()
        );
    }
    let jobs = args
        .jobs
        .unwrap_or_else(biprop::experiment::sweep::default_jobs);
    let rows = compare::run(
        &rules,
        &settings,
        &args.out,
        jobs,
        !args.quiet && std::io::stderr().is_terminal(),
    )
    .map_err(|e| match e.root() {
        biprop::Error::Config(m) if m.contains("another configuration") => anyhow::anyhow!(
            "{e}\n(an earlier comparison with other settings is in {}: pass --force to replace it, or --out)",
            args.out.display()
        ),
        _ => anyhow::anyhow!(e),
    })?;
    say!("{}", compare::markdown(&rows).trim_end());
    compare::plot(&args.out)?;
    say!(
        "plots: {} (test error and alignment curves); runs: {}",
        compare::plots_dir(&args.out).display(),
        args.out.display()
    );
    say!(
        "This is a quick protocol, not the paper's: the paper trains plain SGD for 300 epochs \
         (biprop sweep experiments/table1.toml; docs/experiments.md)."
    );
    Ok(())
}

/// A setting's name as the command line writes it.
fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// The settings that define a protocol, in one line.
fn protocol_line(c: &RunConfig) -> String {
    let mut optim = format!("{} lr {}", value_name(&c.optimizer), c.lr);
    if c.optimizer == OptimizerKind::Sgd && c.momentum > 0.0 {
        optim.push_str(&format!(" momentum {}", c.momentum));
    }
    format!(
        "hidden {} {}, {} outputs, {optim}, batch {}",
        biprop::config::format_hidden(&c.hidden),
        value_name(&c.activation),
        value_name(&c.output),
        c.batch_size
    )
}

fn generate(args: GenerateArgs) -> Result<()> {
    use biprop::checkpoint::Checkpoint;
    use biprop::generate::{self as g, LabelMix};
    let (dir, ckpt) = if args.run.is_dir() {
        (args.run.clone(), args.run.join("checkpoint.safetensors"))
    } else {
        let dir = args
            .run
            .parent()
            .map_or(PathBuf::from("."), Path::to_path_buf);
        (dir, args.run.clone())
    };
    let ck = Checkpoint::load(&ckpt)?;
    let mut cfg = ck.config()?;
    let (inputs, classes) = ck.io_sizes()?;
    let trainer = run::build_trainer_sized(
        &cfg,
        inputs,
        classes,
        Some(&InitFrom::Everything(ckpt.clone())),
    )?;
    let Some(feedback) = trainer.rule.feedback_network() else {
        bail!(
            "{} was trained with --rule {}: only BFA has a feedback network that generates images",
            ckpt.display(),
            cfg.rule
        );
    };
    let image = ck.image_or_guess(inputs);
    let (tiles, default_name, cols) = match args.reconstruct {
        Some(n) => {
            if args.data_dir.is_some() {
                cfg.data_dir = args.data_dir.clone();
            }
            let (_, test) = biprop::data::load(cfg.dataset, cfg.data_dir.as_deref(), cfg.classes)
                .context("loading the test images to reconstruct")?;
            let n = n as usize;
            if n > test.len() {
                bail!(
                    "--reconstruct {n}: the data set has {} test images",
                    test.len()
                );
            }
            let sub = test.slice(0..n);
            (
                g::reconstruct(&trainer.net, feedback, &sub.inputs, &sub.labels)
                    .context("--reconstruct")?,
                "reconstructions.png",
                10,
            )
        }
        None => {
            let mixes = if args.mix.is_empty() {
                (0..classes)
                    .map(|k| LabelMix::one_hot(k, classes, &cfg.dataset.class_name(k)))
                    .collect()
            } else {
                args.mix
                    .iter()
                    .map(|m| LabelMix::parse(m, classes))
                    .collect::<biprop::Result<Vec<_>>>()?
            };
            (g::generate(feedback, &mixes)?, "generated.png", 10)
        }
    };
    let out = args.out.unwrap_or_else(|| dir.join(default_name));
    biprop::images::write_grid(&out, &tiles, image, cols, args.scale)?;
    say!("wrote {}", out.display());
    Ok(())
}

fn sweep(args: SweepArgs) -> Result<()> {
    use biprop::experiment::sweep::{self, Sweep, SweepOptions};
    let mut s = Sweep::from_file(&args.file)?;
    if let Some(out) = args.out {
        s.out = out;
    }
    let cells = s.cells()?;
    if let Some(dir) = &args.export {
        let n = s.export_finished(dir)?;
        say!("copied {n} finished cell(s) into {}", dir.display());
        return Ok(());
    }
    if let Some(dir) = &args.import {
        let n = s.import_finished(dir)?;
        eprintln!("marked {n} cell(s) finished from {}", dir.display());
    }
    if args.slurm {
        use biprop::experiment::slurm;
        let opts = slurm::SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            cpus: args.cpus_per_task,
            mem: args.mem.clone(),
            throttle: args.array_throttle,
            job_name: args.job_name.clone(),
            extra: args.sbatch.clone(),
        };
        let exe = std::env::current_exe().context("locating the biprop binary")?;
        let Some(array) = slurm::job_array(&s, &args.file, &exe, &opts)? else {
            say!(
                "nothing to submit: every cell of {} is finished or running",
                args.file.display()
            );
            return Ok(());
        };
        let path = slurm::write(&s, &array)?;
        say!(
            "wrote {} ({} task(s): cells {})",
            path.display(),
            array.tasks.len(),
            slurm::index_ranges(&array.tasks)
        );
        if args.submit {
            let id = slurm::submit(&path)?;
            say!(
                "submitted job {id}; biprop report {} shows the cells as they finish",
                s.out.display()
            );
        }
        return Ok(());
    }
    if args.list {
        for c in &cells {
            let state = match s.status(c)? {
                None => "pending".to_string(),
                Some(sweep::CellStatus::Finished) => "done".to_string(),
                Some(sweep::CellStatus::Diverged { epoch, .. }) => format!("diverged@{epoch}"),
            };
            say!("{:>4}  {state:<12}  {}", c.index, c.id);
        }
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "sweep {}: {} cells, {} to run -> {}",
            args.file.display(),
            cells.len(),
            s.pending(args.task)?.len(),
            s.out.display()
        );
    }
    let opts = SweepOptions {
        jobs: args.jobs.unwrap_or_else(sweep::default_jobs),
        task: args.task,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    let n = sweep::run_sweep(&s, &opts)?;
    say!("{n} run(s) finished; results in {}", s.out.display());
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    use biprop::bench;
    let rules = if args.rule.is_empty() {
        RuleKind::ALL.to_vec()
    } else {
        args.rule.clone()
    };
    let data = bench::random_mnist();
    if args.batch_size == 0 || args.batch_size > data.len() {
        bail!(
            "--batch-size must be in 1..={}, got {}",
            data.len(),
            args.batch_size
        );
    }
    let mut modes: Vec<bench::Mode> = args
        .threads
        .iter()
        .map(|&t| bench::Mode::Threads(run::resolve_threads(t)))
        .collect();
    modes.extend(args.jobs.map(|j| bench::Mode::Jobs(usize::from(j))));
    let mut cells = Vec::new();
    for h in &args.hidden {
        let hidden = parse_hidden(h).map_err(|e| anyhow::anyhow!("--hidden: {e}"))?;
        for &rule in &rules {
            for &mode in &modes {
                let cfg = RunConfig {
                    rule,
                    hidden: hidden.clone(),
                    batch_size: args.batch_size,
                    gemm: args.gemm,
                    ..Default::default()
                };
                cfg.validate()?;
                cells.push((cfg, mode));
            }
        }
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(cells.len() as u64 * u64::from(args.passes))
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let rows = bench::run_table(&cells, &data, args.seconds, args.passes.into(), |p| {
        if let bench::Progress::Cell(msg) = &p {
            bar.inc(1);
            bar.set_message(msg.clone());
        } else if let bench::Progress::Peaks(msg) = p {
            bar.set_message(msg);
        }
    });
    bar.finish_and_clear();
    let cpu = biprop::tensor::CpuInfo::read();
    say!(
        "CPU: {} ({}, AVX-512 {}); GEMM backend of the step rows: {} (this CPU's choice: {})",
        if cpu.model.is_empty() {
            "unknown model"
        } else {
            &cpu.model
        },
        if cpu.vendor.is_empty() {
            "unknown vendor"
        } else {
            &cpu.vendor
        },
        if cpu.avx512f { "yes" } else { "no" },
        args.gemm.resolve(),
        biprop::tensor::GemmBackend::for_this_cpu()
    );
    let mut thread_counts: Vec<usize> = modes
        .iter()
        .filter_map(|m| match m {
            bench::Mode::Threads(t) => Some(*t),
            bench::Mode::Jobs(_) => None,
        })
        .collect();
    thread_counts.dedup();
    let pars = thread_counts
        .iter()
        .map(|&t| biprop::tensor::Parallelism::threads(t))
        .collect::<biprop::Result<Vec<_>>>()?;
    say!("");
    say!(
        "| product (batch {}) | layout | backend |{}",
        args.batch_size,
        thread_counts
            .iter()
            .map(|t| format!(" GFLOP/s, {t} thread(s) |"))
            .collect::<String>()
    );
    say!("|---|---|---|{}", "---|".repeat(thread_counts.len()));
    for p in bench::step_products(args.batch_size) {
        for backend in biprop::tensor::GemmBackend::CONCRETE {
            let cells: String = pars
                .iter()
                .map(|par| format!(" {:.1} |", bench::product_gflops(p, backend, par)))
                .collect();
            let (m, k, n) = p.mkn;
            say!(
                "| {} {m}x{k}x{n} | {} | {backend} |{cells}",
                p.name,
                p.layout
            );
        }
    }
    say!("");
    let mut shown = Vec::new();
    for row in &rows {
        if !shown.contains(&row.mode) {
            shown.push(row.mode);
            let what = match row.mode {
                bench::Mode::Threads(t) => format!("threads {t}"),
                bench::Mode::Jobs(j) => format!("{j} one-thread jobs at once (summed)"),
            };
            let parts = match row.peaks.fma_parts {
                (avx2, Some(avx512)) => format!(" (256-bit {avx2:.1}, 512-bit {avx512:.1})"),
                _ => String::new(),
            };
            say!(
                "{what}: FMA peak {:.1} GFLOP/s{parts}, GEMM best {:.1} GFLOP/s ({b}x784x800 / {b}x800x800)",
                row.peaks.fma,
                row.peaks.gemm,
                b = args.batch_size
            );
        }
    }
    say!("");
    say!("| rule | hidden | threads | samples/s | s/epoch (50k) | GFLOP/s | % FMA peak | % GEMM best | gemm |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let r = &row.bench;
        say!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.1} | {:.0}% | {:.0}% | {} |",
            r.rule,
            r.hidden,
            row.mode.label(),
            r.samples_per_s,
            // For concurrent jobs: the epoch time of each, as they share the cores.
            50_000.0 * row.mode.runs() as f64 / r.samples_per_s,
            r.gflops,
            100.0 * r.gflops / row.peaks.fma,
            100.0 * r.gflops / row.peaks.gemm,
            r.gemm
        );
    }
    if args.breakdown {
        print_breakdown(&cells, &data, &thread_counts, &pars);
    }
    Ok(())
}

/// The products of [`bench::step_breakdown`] for each thread-count cell, in
/// call order, then the time outside them and the whole step.
fn print_breakdown(
    cells: &[(RunConfig, biprop::bench::Mode)],
    data: &biprop::data::Dataset,
    thread_counts: &[usize],
    pars: &[biprop::tensor::Parallelism],
) {
    const STEPS: usize = 50;
    say!("");
    say!("Inside the step: each product's mean wall time (its epilogue included) over {STEPS} steps, in call order");
    say!("");
    say!("| rule | hidden | threads | product m x k x n | layout | parts | µs/step | GFLOP/s | % of step |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for (cfg, mode) in cells {
        let biprop::bench::Mode::Threads(t) = *mode else {
            continue;
        };
        let par = &pars[thread_counts
            .iter()
            .position(|&c| c == t)
            .expect("a pool per count")];
        let b = biprop::bench::step_breakdown(cfg, data, par, STEPS);
        let cell = format!(
            "| {} | {} | {t} |",
            cfg.rule,
            biprop::config::format_hidden(&cfg.hidden)
        );
        let share = |s: f64| 100.0 * s / b.step_seconds;
        for p in &b.products {
            let (m, k, n) = p.mkn;
            say!(
                "{cell} {m}x{k}x{n}{} | {} | {} | {:.0} | {:.1} | {:.1}% |",
                if p.accumulate { " (+=)" } else { "" },
                p.layout(),
                p.parts,
                1e6 * p.seconds,
                p.flops_per_s() / 1e9,
                share(p.seconds)
            );
        }
        say!(
            "{cell} outside the products | | | {:.0} | | {:.1}% |",
            1e6 * b.outside_products(),
            share(b.outside_products())
        );
        say!(
            "{cell} whole step | | | {:.0} | | 100% |",
            1e6 * b.step_seconds
        );
    }
}

fn report(dir: PathBuf, csv: Option<PathBuf>, select: Option<String>) -> Result<()> {
    use biprop::experiment::report;
    let mut runs = report::collect(&dir)?;
    let mut ignore = Vec::new();
    if let Some(key) = &select {
        let (kept, choices) = report::select(&runs, key)?;
        say!("{}", report::choices_markdown(key, &choices));
        runs = kept;
        ignore.push(key.as_str());
    }
    let groups = report::group_ignoring(&runs, &ignore);
    say!("{}", report::markdown(&groups).trim_end());
    if let Some(path) = csv {
        biprop::fsutil::write_atomic(&path, report::csv_text(&groups).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    biprop::fsutil::ignore_file_size_signal();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compare(args) => compare(*args),
        Command::Train(args) => train(*args),
        Command::Generate(args) => generate(args),
        Command::Sweep(args) => sweep(args),
        Command::Bench(args) => bench(args),
        Command::Report { dir, csv, select } => report(dir, csv, select),
        Command::Plot { dir, out } => (|| {
            let out = out.unwrap_or_else(|| dir.join("plots"));
            for f in biprop::experiment::plot::plot_dir(&dir, &out)? {
                say!("wrote {}", f.display());
            }
            Ok(())
        })(),
        Command::Download { cache } => (|| {
            let cache = match cache {
                Some(c) => c,
                None => biprop::data::download::cache_dir()?,
            };
            let dir = biprop::data::download::ensure_mnist(&cache)?;
            say!("MNIST is in {}", dir.display());
            Ok(())
        })(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A non-default value for every settings flag (by its field name), and
    /// the flags that make it matter to the run.
    const SAMPLES: &[(&str, Option<&str>, &[&str])] = &[
        ("rule", Some("dfa"), &[]),
        ("hidden", Some("2x400"), &[]),
        ("activation", Some("relu"), &[]),
        ("output", Some("softmax-ce"), &[]),
        ("init", Some("reference"), &["--rule", "dfa"]),
        ("feedback_scale", Some("receiver"), &["--rule", "fa"]),
        ("epochs", Some("7"), &[]),
        ("batch_size", Some("64"), &[]),
        ("optimizer", Some("adam"), &[]),
        ("lr", Some("0.5"), &[]),
        ("momentum", Some("0.9"), &[]),
        ("weight_decay", Some("0.001"), &[]),
        ("beta1", Some("0.8"), &["--optimizer", "adam"]),
        ("beta2", Some("0.99"), &["--optimizer", "adam"]),
        ("eps", Some("1e-6"), &["--optimizer", "adam"]),
        ("seed", Some("9"), &[]),
        ("threads", Some("3"), &[]),
        ("dataset", Some("cifar10"), &[]),
        ("data_dir", Some("/some/where"), &[]),
        ("classes", Some("5"), &["--dataset", "idx"]),
        ("val_size", Some("5000"), &[]),
        ("train_limit", Some("1000"), &[]),
        ("feedback_lr", Some("0.3"), &["--rule", "bfa"]),
        ("feedback_optimizer", Some("adam"), &["--rule", "bfa"]),
        ("feedback_momentum", Some("0.5"), &["--rule", "bdfa"]),
        ("bfa_output", Some("identity"), &["--rule", "bfa"]),
        ("bfa_feedback_scale", Some("receiver"), &["--rule", "bfa"]),
        ("bdfa_update", Some("reference"), &["--rule", "bdfa"]),
        ("bdfa_target", Some("mixed"), &["--rule", "bdfa"]),
        (
            "bdfa_alpha",
            Some("0.5"),
            &["--rule", "bdfa", "--bdfa-target", "mixed"],
        ),
        ("kp_decay", Some("0.05"), &["--rule", "kp"]),
        ("gemm", Some("gemm"), &[]),
        ("no_shuffle", None, &[]),
        ("no_alignment", None, &[]),
    ];

    fn train_args(words: &[&str]) -> std::result::Result<TrainArgs, clap::Error> {
        let argv = ["biprop", "train"].iter().chain(words);
        match Cli::try_parse_from(argv)?.command {
            Command::Train(a) => Ok(*a),
            _ => unreachable!(),
        }
    }

    fn resolved(words: &[&str]) -> toml::Table {
        let cfg = train_args(words).unwrap().resolve().unwrap();
        cfg.to_toml().parse().unwrap()
    }

    fn settings_flags() -> Vec<String> {
        SettingsArgs::augment_args(clap::Command::new("x"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }

    /// Every settings flag, set to a non-default value, changes its key in
    /// the resolved config (what config.toml records), and every config key
    /// has a flag: a flag dropped between the parser and the run fails here.
    #[test]
    fn every_flag_lands_in_the_config_and_every_key_has_a_flag() {
        let flags = settings_flags();
        for f in &flags {
            assert!(
                SAMPLES.iter().any(|(name, ..)| name == f),
                "flag {f} has no sample in this test"
            );
        }
        let mut keys_set = std::collections::BTreeSet::new();
        let mut keys_seen = std::collections::BTreeSet::new();
        for (name, value, context) in SAMPLES {
            assert!(flags.iter().any(|f| f == name), "no flag {name}");
            let flag = flag_of(name);
            let mut words: Vec<&str> = context.to_vec();
            words.push(&flag);
            words.extend(value.iter());
            let base = resolved(context);
            let set = resolved(&words);
            let over = train_args(&words).unwrap().settings.overrides().unwrap();
            let key = over
                .keys()
                .find(|k| {
                    !train_args(context)
                        .unwrap()
                        .settings
                        .overrides()
                        .unwrap()
                        .contains_key(*k)
                })
                .unwrap_or_else(|| panic!("{flag} sets no key"))
                .clone();
            assert_ne!(
                base.get(&key),
                set.get(&key),
                "{flag} did not change {key} in the config"
            );
            // As the run sees it: hidden widths as a list, floats as f32.
            let as_run = |v: &toml::Value| match v {
                toml::Value::Float(f) => toml::Value::Float(f64::from(*f as f32)),
                toml::Value::String(h) if key == "hidden" => toml::Value::Array(
                    parse_hidden(h)
                        .unwrap()
                        .into_iter()
                        .map(|w| (w as i64).into())
                        .collect(),
                ),
                v => v.clone(),
            };
            assert_eq!(
                set.get(&key).map(as_run),
                over.get(&key).map(as_run),
                "{flag}"
            );
            keys_set.insert(key);
            keys_seen.extend(set.keys().cloned());
        }
        let missing: Vec<_> = keys_seen.difference(&keys_set).collect();
        assert!(
            missing.is_empty(),
            "config keys without a flag: {missing:?}"
        );
    }

    /// A flag that would change nothing is refused, with the reason.
    #[test]
    fn flags_without_effect_are_refused() {
        for (words, want) in [
            (&["--bdfa-alpha", "0.5"][..], "--bdfa-alpha has no effect"),
            (
                &["--rule", "bdfa", "--bdfa-alpha", "0.5"][..],
                "--bdfa-target mixed or reference",
            ),
            (&["--feedback-lr", "0.1"][..], "no learning feedback"),
            (
                &["--rule", "fa", "--bfa-output", "identity"][..],
                "bfa only",
            ),
            (
                &["--feedback-scale", "receiver"][..],
                "no fixed random feedback",
            ),
            (&["--beta1", "0.5"][..], "adam only"),
            (
                &["--optimizer", "adam", "--momentum", "0.9"][..],
                "sgd only",
            ),
            (
                &[
                    "--rule",
                    "bfa",
                    "--optimizer",
                    "adam",
                    "--feedback-optimizer",
                    "adam",
                    "--momentum",
                    "0.9",
                ][..],
                "sgd only",
            ),
            (&["--classes", "5"][..], "10 classes"),
            (
                &["--init", "reference"][..],
                "initializes BP as the default",
            ),
            (
                &["--rule", "bfa", "--init", "reference"][..],
                "no BFA initialization",
            ),
            (
                &[
                    "--rule",
                    "fa",
                    "--init",
                    "reference",
                    "--feedback-scale",
                    "sender",
                ][..],
                "receiver scale",
            ),
        ] {
            let err = train_args(words)
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{words:?}: {err}");
        }
        // Momentum still reaches BFA's feedback under sgd when the forward optimizer is adam.
        let cfg = train_args(&[
            "--rule",
            "bfa",
            "--optimizer",
            "adam",
            "--feedback-optimizer",
            "sgd",
            "--momentum",
            "0.9",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(cfg.rule_options().feedback_opt.momentum, 0.9);
        // The same keys in a TOML file (a sweep's base serves every rule) are fine.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "bdfa_alpha = 0.5\nfeedback_scale = \"receiver\"\n").unwrap();
        let cfg = train_args(&["--config", file.to_str().unwrap()])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(cfg.bdfa_alpha, 0.5);
    }

    /// Flags override the file; the file overrides the defaults.
    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "epochs = 3\nlr = 0.2\nrule = \"bdfa\"\nbdfa_update = \"reference\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let cfg = train_args(&[
            "--config",
            path,
            "--epochs",
            "5",
            "--bdfa-target",
            "reference",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!((cfg.epochs, cfg.lr), (5, 0.2));
        assert_eq!(cfg.bdfa_update, BdfaUpdate::Reference);
        assert_eq!(cfg.bdfa_target, BdfaTarget::Reference);
        std::fs::write(&file, "epochz = 3\n").unwrap();
        let err = train_args(&["--config", path])
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(format!("{err:#}").contains("epochz"), "{err:#}");
    }

    /// generate's options are checked instead of clamped or ignored.
    #[test]
    fn generate_refuses_what_it_would_ignore() {
        for words in [
            &["generate", "r", "--reconstruct", "4", "--mix", "3:1"][..],
            &["generate", "r", "--reconstruct", "0"][..],
            &["generate", "r", "--scale", "0"][..],
            &["generate", "r", "--scale", "33"][..],
            &["generate", "r", "--data-dir", "d"][..],
        ] {
            let argv = std::iter::once(&"biprop").chain(words);
            assert!(Cli::try_parse_from(argv).is_err(), "{words:?} accepted");
        }
        Cli::command().debug_assert();
    }
}
