//! What a run holds in memory, counted from its settings alone: every
//! buffer the trainer, the rule, the optimizer, the evaluation, the
//! alignment probe and the checkpoint writer allocate, each named by the
//! layer that drives it. Counts are `u128` and saturate, so that absurd
//! sizes (a hidden layer of 10^18 units) give an absurd estimate, not an
//! overflow.

use super::format::{bytes, count};
use crate::config::RunConfig;
use crate::layers::spec::Planned;
use crate::layers::{Kind, Plain, PoolKind, Shape};
use crate::optim::{OptimConfig, OptimizerKind};
use crate::rules::RuleKind;

/// Bytes of one value (`f32`, and the `u32` of a max-pooling's arg-max).
const VALUE: u128 = 4;

/// What a part of an estimate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// The copies made while the data set is read and split, freed before
    /// the trainer is made.
    Loading,
    /// The training, validation and test samples.
    Data,
    /// The forward network's weights and biases.
    Weights,
    /// The rule's feedback weights (BFA's whole feedback network).
    Feedback,
    /// Optimizer state (momentum, Adam's moments) and gradient buffers.
    Optimizer,
    /// Every buffer of a training step's batch.
    Batch,
    /// The buffers of an evaluation chunk.
    Evaluation,
    /// The once-an-epoch alignment probe's buffers.
    Alignment,
    /// The copies made while a checkpoint is written.
    Checkpoint,
    /// The program, its threads and its libraries.
    Program,
}

impl Category {
    /// Every category, in the order reports list them.
    pub const ALL: [Category; 10] = [
        Category::Loading,
        Category::Data,
        Category::Weights,
        Category::Feedback,
        Category::Optimizer,
        Category::Batch,
        Category::Evaluation,
        Category::Alignment,
        Category::Checkpoint,
        Category::Program,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Loading => "loading the data (freed before training)",
            Category::Data => "data set",
            Category::Weights => "weights and biases",
            Category::Feedback => "feedback weights",
            Category::Optimizer => "optimizer state and gradients",
            Category::Batch => "training batch buffers",
            Category::Evaluation => "evaluation buffers",
            Category::Alignment => "alignment probe",
            Category::Checkpoint => "checkpoint writing",
            Category::Program => "the program itself",
        }
    }
}

/// One part of an estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// What it is for.
    pub category: Category,
    /// What it is and what drives its size: `layer 1 (dense 800): 800 x 784 weights`.
    pub what: String,
    /// Its size in bytes (saturated at `u128::MAX`).
    pub bytes: u128,
}

/// The memory of a run, part by part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Every part, in the order the run allocates them.
    pub parts: Vec<Part>,
}

impl Estimate {
    /// The peak, in bytes (saturated): the run's parts together, or the
    /// loading of its data with the program, whichever is larger (the
    /// loading's copies are freed before the trainer is made).
    pub fn total(&self) -> u128 {
        let sum = |keep: &dyn Fn(Category) -> bool| {
            self.parts
                .iter()
                .filter(|p| keep(p.category))
                .fold(0u128, |t, p| t.saturating_add(p.bytes))
        };
        let running = sum(&|c| c != Category::Loading);
        let loading = sum(&|c| matches!(c, Category::Loading | Category::Program));
        running.max(loading)
    }

    /// The bytes of each category that has any, in [`Category::ALL`]'s order.
    pub fn by_category(&self) -> Vec<(Category, u128)> {
        Category::ALL
            .iter()
            .map(|&c| {
                let b = self
                    .parts
                    .iter()
                    .filter(|p| p.category == c)
                    .fold(0u128, |t, p| t.saturating_add(p.bytes));
                (c, b)
            })
            .filter(|&(_, b)| b > 0)
            .collect()
    }

    /// The `n` largest parts, largest first.
    pub fn largest(&self, n: usize) -> Vec<&Part> {
        let mut v: Vec<&Part> = self.parts.iter().filter(|p| p.bytes > 0).collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        v.truncate(n);
        v
    }

    /// The largest parts in one line: `layer 1 (dense 1000000000):
    /// 1,000,000,000 x 784 weights = 3.1 TB; ...`.
    pub fn drivers(&self, n: usize) -> String {
        self.largest(n)
            .iter()
            .map(|p| format!("{} = {}", p.what, bytes(p.bytes)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a run holds beside its trainer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Samples of the data set held in memory while training (0 where it is
    /// not counted: already loaded, or given by the caller).
    pub data_samples: usize,
    /// Samples read from the data files (their loading's copies are counted
    /// when more than 0).
    pub loaded_samples: usize,
    /// A checkpoint is written after every epoch (a run with a folder).
    pub checkpoint: bool,
    /// The alignment probe runs once an epoch.
    pub alignment: bool,
}

/// The program's own memory beside its buffers: code, libraries, the
/// allocator's slack (measured: about 10 MB resident for a small run;
/// counted generously).
const PROGRAM_BYTES: u128 = 48_000_000;

/// Each thread's share beside the buffers: its stack in use and the GEMM
/// kernels' packing buffers (bounded by the cache blocks, not the sizes:
/// tests/limits.rs measures 0.2 to 2.6 MB).
const THREAD_BYTES: u128 = 4_000_000;

/// How the layers of one network are counted.
struct Net<'a> {
    /// Prefix of its parts' names (`BFA's feedback network, `).
    who: &'a str,
    category: Category,
    input: Shape,
    plan: &'a [Planned],
    opt: &'a OptimConfig,
    rows: usize,
    /// Rows of the evaluation buffers, for a network that is evaluated.
    eval_rows: Option<usize>,
}

/// `layer 2 (conv 16 5x5)`: 1-based, as layer descriptions count.
pub fn layer_name(i: usize, kind: &Kind) -> String {
    let what = match kind {
        Kind::Dense(d) => format!("dense {}", d.outputs),
        Kind::Conv2d(g) | Kind::ConvTranspose(g) => {
            let mut s = match kind {
                Kind::Conv2d(_) => format!("conv {} ", g.out_channels),
                _ => format!("conv-transpose {} ", g.input.c),
            };
            s.push_str(&format!("{}x{}", g.kernel.0, g.kernel.1));
            if g.stride != 1 {
                s.push_str(&format!(" stride {}", g.stride));
            }
            if g.padding != 0 {
                s.push_str(&format!(" pad {}", g.padding));
            }
            s
        }
    };
    format!("layer {} ({what})", i + 1)
}

/// The state an optimizer keeps per value (gradient buffer, momentum or
/// Adam's two moments): how many copies, how many of them a checkpoint
/// stores (not the gradient buffer), and their name.
fn state_copies(opt: &OptimConfig) -> (u128, u128, &'static str) {
    match opt.kind {
        OptimizerKind::Adam => (3, 2, "gradient and Adam's m and v"),
        OptimizerKind::Sgd if opt.momentum != 0.0 => (2, 1, "gradient and momentum"),
        OptimizerKind::Sgd if !opt.is_plain_sgd() => (1, 0, "gradient (for weight decay)"),
        OptimizerKind::Sgd => (0, 0, ""),
    }
}

fn mul(xs: &[usize]) -> u128 {
    xs.iter().fold(1u128, |p, &x| p.saturating_mul(x as u128))
}

struct Builder {
    parts: Vec<Part>,
    /// Values a checkpoint stores: weights, stored feedback, optimizer state.
    stored: u128,
    /// The optimizer state among them.
    state: u128,
}

impl Builder {
    /// Counts `values` values as stored in a checkpoint, `state` of them
    /// optimizer state.
    fn store(&mut self, values: u128, state: u128) {
        self.stored = self.stored.saturating_add(values).saturating_add(state);
        self.state = self.state.saturating_add(state);
    }

    /// A part of `values` values (4 bytes each).
    fn values(&mut self, category: Category, what: String, values: u128) {
        if values > 0 {
            self.parts.push(Part {
                category,
                what,
                bytes: values.saturating_mul(VALUE),
            });
        }
    }

    /// Weights, optimizer state and buffers of every layer of `n`.
    fn network(&mut self, n: &Net<'_>) {
        let rows = n.rows;
        let (copies, kept, state) = state_copies(n.opt);
        self.values(
            Category::Batch,
            format!("{}input batch: {rows} x {}", n.who, count(n.input.len())),
            mul(&[rows, n.input.len()]),
        );
        if let Some(e) = n.eval_rows {
            self.values(
                Category::Evaluation,
                format!("{}inputs: {e} x {}", n.who, count(n.input.len())),
                mul(&[e, n.input.len()]),
            );
        }
        for (i, (kind, _, pre)) in n.plan.iter().enumerate() {
            let name = format!("{}{}", n.who, layer_name(i, kind));
            let (r, c) = kind.weight_matrix_shape();
            let weights = mul(&[r, c]).saturating_add(kind.out_shape().c as u128);
            self.store(weights, kept.saturating_mul(weights));
            self.values(
                n.category,
                format!("{name}: {} x {} weights", count(r), count(c)),
                weights,
            );
            if copies > 0 {
                self.values(
                    Category::Optimizer,
                    format!(
                        "{name}: {state}, {copies} x its {} x {} weights",
                        count(r),
                        count(c)
                    ),
                    copies.saturating_mul(weights),
                );
            }
            let out = kind.out_shape().len();
            self.values(
                Category::Batch,
                format!("{name}: outputs and errors, 2 x {rows} x {}", count(out)),
                mul(&[2, rows, out]),
            );
            // A layer's workspace is the same for a batch and an evaluation
            // chunk (`Layer::workspace`), at their rows.
            let mut at_rows = |category, rows: usize| {
                let plain: u128 = pre
                    .iter()
                    .map(|p| {
                        let argmax = matches!(p, Plain::Pool(q) if q.kind == PoolKind::Max);
                        // Output, error and (max-pooling) arg-max, each a value a sample.
                        mul(&[2 + argmax as usize, rows, p.output().len()])
                    })
                    .fold(0, u128::saturating_add);
                self.values(
                    category,
                    format!(
                        "{name}: the {} pooling and flatten buffers before it, {rows} samples",
                        pre.len()
                    ),
                    plain,
                );
                if let Kind::Conv2d(g) | Kind::ConvTranspose(g) = kind {
                    // The patches, and their errors where the input error is
                    // made (every layer but the first; a transposed
                    // convolution's product buffer always).
                    let both = i > 0 || matches!(kind, Kind::ConvTranspose(_));
                    let k = 1 + both as usize;
                    let what = if both {
                        "im2col patches and their errors"
                    } else {
                        "im2col patches"
                    };
                    self.values(
                        category,
                        format!(
                            "{name}: {what}, {k} x {rows} x {} x {}",
                            count(g.positions()),
                            count(g.patch_len())
                        ),
                        mul(&[k, rows, g.positions(), g.patch_len()]),
                    );
                }
            };
            at_rows(Category::Batch, rows);
            if let Some(e) = n.eval_rows {
                at_rows(Category::Evaluation, e);
                self.values(
                    Category::Evaluation,
                    format!("{name}: outputs, {e} x {}", count(out)),
                    mul(&[e, out]),
                );
            }
        }
    }
}

/// The memory of a run of `cfg` on inputs of `input` through the layers of
/// `plan` (from [`RunConfig::network_plan`]), with `extras`.
pub fn estimate_plan(cfg: &RunConfig, input: Shape, plan: &[Planned], extras: &Extras) -> Estimate {
    let mut b = Builder {
        parts: Vec::new(),
        stored: 0,
        state: 0,
    };
    let rows = cfg.batch_size;
    let eval = crate::train::EVAL_ROWS;
    let classes = plan.last().map_or(0, |(k, ..)| k.out_shape().len());
    let len = input.len();
    if extras.data_samples > 0 {
        let n = extras.data_samples;
        b.values(
            Category::Data,
            format!("the data set: {} x {} values", count(n), count(len)),
            // The labels, a byte each, are a quarter value each.
            mul(&[n, len]).saturating_add(n as u128 / 4 + 1),
        );
    }
    if extras.loaded_samples > 0 {
        // Loading holds every sample as values and, a file at a time, as
        // bytes, then copies the training part out of the training file
        // (the validation split); then trains on what it kept.
        let n = extras.loaded_samples;
        b.values(
            Category::Loading,
            format!(
                "loading the data set: {} x {} values, their bytes and a copy of the training part",
                count(n),
                count(len)
            ),
            mul(&[n, len]).saturating_mul(9) / 4,
        );
    }
    let opt = cfg.optim();
    b.network(&Net {
        who: "",
        category: Category::Weights,
        input,
        plan,
        opt: &opt,
        rows,
        eval_rows: Some(eval),
    });
    b.values(
        Category::Batch,
        format!("targets and outputs, 2 x {rows} x {classes}"),
        mul(&[2, rows, classes]),
    );
    b.values(
        Category::Evaluation,
        format!("targets and errors, 2 x {eval} x {classes}"),
        mul(&[2, eval, classes]),
    );
    feedback(&mut b, cfg, plan, rows, classes);
    if extras.alignment {
        let hidden = plan.len().saturating_sub(1);
        for (i, (kind, ..)) in plan.iter().enumerate() {
            let out = kind.out_shape().len();
            let mut what = format!("the alignment probe, {}: ", layer_name(i, kind));
            let mut values = mul(&[rows, out]);
            if i < hidden {
                let (r, c) = kind.weight_matrix_shape();
                what.push_str(&format!("2 gradients of {} x {} and ", count(r), count(c)));
                values = values.saturating_add(mul(&[2, r, c]));
            }
            what.push_str(&format!("BP's errors, {rows} x {}", count(out)));
            b.values(Category::Alignment, what, values);
        }
    }
    if extras.checkpoint {
        // Every stored tensor is copied into bytes, then serialized into a
        // second buffer; the optimizer state is copied out once more first.
        let stored = b.stored.saturating_mul(VALUE);
        b.parts.push(Part {
            category: Category::Checkpoint,
            what: format!(
                "writing the checkpoint: 2 copies of its {} of tensors",
                bytes(stored)
            ),
            bytes: stored
                .saturating_mul(2)
                .saturating_add(b.state.saturating_mul(VALUE)),
        });
    }
    let threads = crate::tensor::resolve_threads(cfg.threads);
    b.parts.push(Part {
        category: Category::Program,
        what: format!("the program itself and its {threads} thread(s)"),
        bytes: PROGRAM_BYTES.saturating_add(THREAD_BYTES.saturating_mul(threads as u128)),
    });
    Estimate { parts: b.parts }
}

/// The rule's feedback weights, their optimizer and their buffers.
fn feedback(b: &mut Builder, cfg: &RunConfig, plan: &[Planned], rows: usize, classes: usize) {
    use RuleKind::*;
    let rule = cfg.rule;
    let fopt = cfg.rule_options().feedback_opt;
    let (copies, kept, state) = state_copies(&fopt);
    let hidden = plan.len().saturating_sub(1);
    // Stand-ins for every layer above the first, in the weight's size.
    // Sets of stand-ins, those a checkpoint stores, and their name.
    let (sets, stored, name) = match rule {
        Fa => (1, 1, "FA's feedback matrix B"),
        Kp => (1, 1, "KP's feedback matrix B"),
        Usf => (1, 0, "uSF's sign path B"),
        Frsf => (2, 1, "the magnitudes M and the path B"),
        Brsf => (2, 0, "the magnitudes M and the path B"),
        _ => (0, 0, ""),
    };
    for (i, (kind, ..)) in plan.iter().enumerate().skip(1).filter(|_| sets > 0) {
        let (r, c) = kind.weight_matrix_shape();
        let label = layer_name(i, kind);
        b.values(
            Category::Feedback,
            format!("{label}: {name}, {sets} x {} x {}", count(c), count(r)),
            mul(&[sets, r, c]),
        );
        b.store(mul(&[stored, r, c]), 0);
        if rule == Kp && copies > 0 {
            b.values(
                Category::Optimizer,
                format!(
                    "{label}: B's {state}, {copies} x {} x {}",
                    count(c),
                    count(r)
                ),
                copies.saturating_mul(mul(&[r, c])),
            );
            b.store(0, kept.saturating_mul(mul(&[r, c])));
        }
    }
    // Projections of the output error to every hidden layer.
    if matches!(rule, Dfa | Drtp | Dkp | Bdfa) {
        for (i, (kind, ..)) in plan.iter().enumerate().take(hidden) {
            let units = kind.out_shape().len();
            let label = layer_name(i, kind);
            b.values(
                Category::Feedback,
                format!(
                    "{label}: {rule}'s projection D, {} x {classes}",
                    count(units)
                ),
                mul(&[units, classes]),
            );
            b.store(mul(&[units, classes]), 0);
            if matches!(rule, Dkp | Bdfa) && copies > 0 {
                b.values(
                    Category::Optimizer,
                    format!(
                        "{label}: D's {state}, {copies} x {} x {classes}",
                        count(units)
                    ),
                    copies.saturating_mul(mul(&[units, classes])),
                );
                b.store(0, kept.saturating_mul(mul(&[units, classes])));
            }
            if rule == Bdfa {
                b.values(
                    Category::Batch,
                    format!("{label}: BDFA's projection buffer, {rows} x {classes}"),
                    mul(&[rows, classes]),
                );
            }
        }
        if rule == Bdfa {
            b.values(
                Category::Batch,
                format!("BDFA's target y', {rows} x {classes}"),
                mul(&[rows, classes]),
            );
        }
    }
    if rule == Bfa && !plan.is_empty() {
        let mirror = crate::network::mirror_plan(plan);
        let input = plan[plan.len() - 1].0.out_shape();
        b.network(&Net {
            who: "BFA's feedback network, ",
            category: Category::Feedback,
            input,
            plan: &mirror,
            opt: &fopt,
            rows,
            eval_rows: None,
        });
    }
}
