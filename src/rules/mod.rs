//! Learning rules: how the hidden errors `delta_l` are made, and whether the
//! rule owns feedback weights that learn.
//!
//! Every rule ends the same way (docs/rules.md): from the hidden errors
//! the trainer forms `dW_l = delta_l^T h_{l-1} / B` and steps the optimizer.
//! A rule is one type implementing [`LearningRule`], one file each.
//!
//! Buffer conventions shared by all rules, for a network with `L` hidden
//! layers: `acts[0]` is the input batch, `acts[l]` (l = 1..=L) the output of
//! hidden layer `l`, `acts[L+1]` the network's outputs `yhat`. `deltas[i]`
//! (i = 0..L-1) is the error at the pre-activation of `forward.{i}`, and
//! `deltas[L]` holds the output error `e = yhat - y` on entry.

mod bdfa;
mod bfa;
mod bp;
mod brsf;
mod dfa;
mod dkp;
mod drtp;
mod fa;
mod frsf;
mod kp;
mod usf;

pub use bdfa::{Bdfa, BdfaTarget, BdfaUpdate, REFERENCE_FEEDBACK_LR};
pub use bfa::Bfa;
pub use bp::Bp;
pub use brsf::Brsf;
pub use dfa::Dfa;
pub use dkp::Dkp;
pub use drtp::Drtp;
pub use fa::Fa;
pub use frsf::Frsf;
pub use kp::{Kp, KP_DEFAULT_DECAY};
pub use usf::Usf;

use crate::activation::Activation;
use crate::loss::Output;
use crate::model::Mlp;
use crate::optim::OptimConfig;
use crate::tensor::{gemm_then, Matrix, View};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The learning rules biprop implements.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Backpropagation.
    #[default]
    Bp,
    /// Feedback alignment (Lillicrap et al. 2016): fixed random B in place of W^T.
    Fa,
    /// Direct feedback alignment (Nøkland 2016): fixed random D from the output error to every hidden layer.
    Dfa,
    /// Bidirectional FA (the paper): the feedback weights form a label-to-input network that learns.
    Bfa,
    /// Bidirectional DFA (the paper): DFA whose feedback matrices learn.
    Bdfa,
    /// Kolen-Pollack (Akrout et al. 2019): FA whose B gets W^T's gradient and decay.
    Kp,
    /// Uniform sign-concordant feedback: B = sign(W)^T / sqrt(fan_in), every step.
    Usf,
    /// Fixed random-magnitude sign-concordant feedback: B = |M| .* sign(W)^T, M fixed.
    Frsf,
    /// Batchwise random-magnitude sign-concordant feedback: FRSF with M redrawn every batch.
    Brsf,
    /// Direct random target projection (Frenkel et al. 2021): fixed random D from the target.
    Drtp,
    /// Direct Kolen-Pollack (Webster et al. 2020): DFA whose D learns from h^T e.
    Dkp,
}

impl RuleKind {
    /// The rule's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Bp => "bp",
            RuleKind::Fa => "fa",
            RuleKind::Dfa => "dfa",
            RuleKind::Bfa => "bfa",
            RuleKind::Bdfa => "bdfa",
            RuleKind::Kp => "kp",
            RuleKind::Usf => "usf",
            RuleKind::Frsf => "frsf",
            RuleKind::Brsf => "brsf",
            RuleKind::Drtp => "drtp",
            RuleKind::Dkp => "dkp",
        }
    }

    /// Every rule: the paper's five in its column order, then the others
    /// (the order of reports and plots).
    pub const ALL: [RuleKind; 11] = [
        RuleKind::Bp,
        RuleKind::Fa,
        RuleKind::Dfa,
        RuleKind::Bfa,
        RuleKind::Bdfa,
        RuleKind::Kp,
        RuleKind::Usf,
        RuleKind::Frsf,
        RuleKind::Brsf,
        RuleKind::Drtp,
        RuleKind::Dkp,
    ];
}

impl std::fmt::Display for RuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the forward and feedback weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// Every forward weight and bias from `U(+-1/sqrt(fan_in))`; fixed random
    /// feedback at the feedback scale (`--feedback-scale`).
    #[default]
    Default,
    /// The published code's scheme (docs/rules.md): FA's B copies the
    /// initial forward weights and every later forward layer starts at zero;
    /// DFA and BDFA start every forward weight at zero, D from
    /// `U(+-1/sqrt(n_l))`. BP's published init is the default one; BFA and
    /// the rules beyond the paper's have no published scheme and the config
    /// refuses it for them.
    Reference,
}

/// The scale of fixed random feedback matrices (FA's B, DFA's and BDFA's
/// initial D): the bound `a` of `U(-a, a)`.
///
/// The two differ by up to 9x on the paper's shapes (`1/sqrt(10)` against
/// `1/sqrt(800)` for D), enough to change FA's and DFA's test error by more
/// than a point, so the setting is recorded with every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackScale {
    /// `a = 1/sqrt(n)`, n the width of the vector the matrix multiplies (the
    /// error it carries): `1/sqrt(C)` for D and for the top B.
    Sender,
    /// `a = 1/sqrt(n)`, n the width of the layer that receives the error: the
    /// scale of the forward weight that B replaces, and the published code's
    /// D. The paper's numbers were made at this scale.
    Receiver,
}

impl FeedbackScale {
    /// The scale `init` implies when none is asked for: the published
    /// code's scheme draws at the receiver's scale.
    pub fn implied_by(init: InitScheme) -> Self {
        match init {
            InitScheme::Default => FeedbackScale::Sender,
            InitScheme::Reference => FeedbackScale::Receiver,
        }
    }

    /// The bound for a matrix carrying a `sender`-wide error to a
    /// `receiver`-wide layer.
    pub fn bound(self, sender: usize, receiver: usize) -> f32 {
        let n = match self {
            FeedbackScale::Sender => sender,
            FeedbackScale::Receiver => receiver,
        };
        1.0 / (n as f32).sqrt()
    }

    /// The setting's name in configs.
    pub fn name(self) -> &'static str {
        match self {
            FeedbackScale::Sender => "sender",
            FeedbackScale::Receiver => "receiver",
        }
    }
}

/// A named tensor of a network's or a rule's weights, as stored in checkpoints.
#[derive(Debug)]
pub struct FeedbackTensor<'a> {
    /// Checkpoint name, e.g. `feedback.1.weight`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values.
    pub data: &'a [f32],
}

/// A mutable named tensor, for loading checkpoints.
#[derive(Debug)]
pub struct FeedbackTensorMut<'a> {
    /// Checkpoint name.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values.
    pub data: &'a mut [f32],
}

/// What a rule sees when it makes a batch's hidden errors.
pub struct ErrorStep<'a> {
    /// The network, before this batch's update.
    pub net: &'a Mlp,
    /// This batch's forward activations, see the module docs.
    pub acts: &'a [Matrix],
    /// One-hot targets of this batch (DRTP's hidden errors come from them).
    pub targets: &'a Matrix,
    /// Rows of the batch in use.
    pub rows: usize,
}

/// What a rule may use to train its own feedback weights after the forward update.
pub struct FeedbackStep<'a> {
    /// The network, after this batch's forward update.
    pub net: &'a Mlp,
    /// This batch's forward activations (before the update), see the module docs.
    pub acts: &'a [Matrix],
    /// This batch's errors, as the forward update used them: the hidden
    /// errors `deltas[0..L]`, then the output error `deltas[L]`.
    pub deltas: &'a [Matrix],
    /// One-hot targets of this batch.
    pub targets: &'a Matrix,
    /// The output pre-activations of this batch's forward pass.
    pub logits: &'a Matrix,
    /// Rows of the batch in use.
    pub rows: usize,
}

/// A learning rule.
pub trait LearningRule: Send {
    /// Which rule this is.
    fn kind(&self) -> RuleKind;

    /// Writes `deltas[0..L]` from `deltas[L]` (the output error), the
    /// forward activations and the targets, for the first `step.rows` rows.
    /// `&mut self` because some rules make their error path here, from the
    /// weights as they are before the update (USF, FRSF, BRSF).
    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]);

    /// Trains the rule's own feedback weights, once per batch, after the
    /// forward update. Rules with fixed feedback do nothing.
    fn train_feedback(&mut self, _step: &FeedbackStep<'_>) {}

    /// Feedback losses accumulated since the last call (name, mean), then reset.
    fn take_feedback_losses(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The rule's feedback tensors, for checkpoints and diagnostics (none by default).
    fn feedback_tensors(&self) -> Vec<FeedbackTensor<'_>> {
        Vec::new()
    }

    /// The rule's feedback tensors, mutable, for loading checkpoints.
    fn feedback_tensors_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        Vec::new()
    }

    /// The state of the feedback optimizer (momentum, Adam moments), for
    /// checkpoints that resume exactly. Names start with `optim.feedback.`.
    fn optimizer_state_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        Vec::new()
    }

    /// Sets the feedback optimizer's step count (when resuming).
    fn set_steps(&mut self, _steps: u64) {}

    /// The `[in_j, out_j]` matrix that stands in for `forward.{j}.weight`^T
    /// as an error path, for rules that have one (FA, BFA, KP, and the
    /// sign-concordant rules, whose path is the one their last
    /// [`LearningRule::hidden_errors`] made).
    fn transpose_stand_in<'a>(&'a self, _net: &'a Mlp, _j: usize) -> Option<&'a Matrix> {
        None
    }

    /// The generative feedback network, for rules that have one (BFA).
    fn feedback_network(&self) -> Option<&Mlp> {
        None
    }
}

/// Rule settings beyond the forward optimizer.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleOptions {
    /// How weights start.
    pub init: InitScheme,
    /// The scale of fixed random feedback matrices.
    pub feedback_scale: FeedbackScale,
    /// The largest batch (feedback phases allocate their buffers once).
    pub max_rows: usize,
    /// The optimizer of learning feedback weights (BFA, BDFA, DKP; for KP
    /// the forward optimizer itself, which [`crate::config::RunConfig::rule_options`]
    /// makes it, since KP's identity needs the same steps on both sides).
    pub feedback_opt: OptimConfig,
    /// BFA's reconstruction output: `SigmoidBce` or `Identity`.
    pub bfa_output: Output,
    /// The scale of BFA's feedback weights that are error paths ([`Bfa::new`]).
    pub bfa_feedback_scale: FeedbackScale,
    /// BDFA's feedback update.
    pub bdfa_update: BdfaUpdate,
    /// BDFA's target.
    pub bdfa_target: BdfaTarget,
    /// `alpha` of BDFA's mixed and reference targets.
    pub bdfa_alpha: f32,
}

impl Default for RuleOptions {
    fn default() -> Self {
        Self {
            init: InitScheme::Default,
            feedback_scale: FeedbackScale::Sender,
            max_rows: 128,
            feedback_opt: OptimConfig::default(),
            bfa_output: Output::SigmoidBce,
            bfa_feedback_scale: FeedbackScale::Sender,
            bdfa_update: BdfaUpdate::Paper,
            bdfa_target: BdfaTarget::Label,
            bdfa_alpha: 0.25,
        }
    }
}

/// Builds `kind` for `net`, possibly re-initializing `net` as the init scheme requires.
pub fn build(
    kind: RuleKind,
    net: &mut Mlp,
    opts: &RuleOptions,
    rng: &mut impl Rng,
) -> Box<dyn LearningRule> {
    match kind {
        RuleKind::Bp => Box::new(Bp),
        RuleKind::Fa => Box::new(Fa::new(net, opts.init, opts.feedback_scale, rng)),
        RuleKind::Dfa => Box::new(Dfa::new(net, opts.init, opts.feedback_scale, rng)),
        RuleKind::Bfa => Box::new(Bfa::new(
            net,
            opts.bfa_output,
            opts.bfa_feedback_scale,
            opts.feedback_opt,
            opts.max_rows,
            rng,
        )),
        RuleKind::Bdfa => Box::new(Bdfa::new(
            Dfa::new(net, opts.init, opts.feedback_scale, rng),
            opts.bdfa_update,
            opts.bdfa_target,
            opts.bdfa_alpha,
            opts.feedback_opt,
            opts.max_rows,
        )),
        RuleKind::Kp => Box::new(Kp::new(
            net,
            opts.init,
            opts.feedback_scale,
            opts.feedback_opt,
            rng,
        )),
        RuleKind::Usf => Box::new(Usf::new(net)),
        RuleKind::Frsf => Box::new(Frsf::new(net, opts.feedback_scale, rng)),
        RuleKind::Brsf => Box::new(Brsf::new(net, opts.feedback_scale, rng)),
        RuleKind::Drtp => Box::new(Drtp::new(Dfa::new(
            net,
            opts.init,
            opts.feedback_scale,
            rng,
        ))),
        RuleKind::Dkp => Box::new(Dkp::new(
            Dfa::new(net, opts.init, opts.feedback_scale, rng),
            opts.feedback_opt,
        )),
    }
}

/// Zero `[in_j, out_j]` matrices for `forward.{j}`, j = 1..=L: the shape of
/// the paths that stand in for the transposed forward weights.
pub(crate) fn transposed_buffers(net: &Mlp) -> Vec<Matrix> {
    net.layers[1..]
        .iter()
        .map(|l| Matrix::zeros(l.fan_in(), l.fan_out()))
        .collect()
}

/// `dst = sign(w)^T .* magnitude`: `dst[i][o] = sign(w[o][i]) * magnitude(k)`
/// with `k = i * out + o` the flat index into `dst`, and `sign(0) = 0`
/// (`f32::signum` would give a zero weight a path). The sign-concordant
/// rules' path. Written in tiles, as a plain transpose reads `w` a column
/// at a time, and in bands of `dst` rows on the GEMM threads: rebuilt every
/// step, an 800x800 path on one thread cost USF a third of BP's step.
pub(crate) fn sign_concordant(
    dst: &mut Matrix,
    w: &Matrix,
    magnitude: impl Fn(usize) -> f32 + Sync,
) {
    let (out, inp) = w.shape();
    assert_eq!(
        dst.shape(),
        (inp, out),
        "path shaped as the weight transposed"
    );
    let parts = if inp * out < 1 << 16 {
        1
    } else {
        crate::tensor::gemm_threads()
    };
    sign_band(dst.as_mut_slice(), 0, w, &magnitude, parts);
}

/// [`sign_concordant`] for the rows of `dst` from `i0` on (`dst` holds
/// whole rows), cut into `parts` bands under `rayon::join`. Each element is
/// computed alone, so the bands give bitwise the one-band result.
fn sign_band(
    d: &mut [f32],
    i0: usize,
    w: &Matrix,
    magnitude: &(impl Fn(usize) -> f32 + Sync),
    parts: usize,
) {
    const TILE: usize = 32;
    let (out, inp) = w.shape();
    let rows = d.len() / out;
    if parts > 1 && rows > TILE {
        let at = (rows / parts).next_multiple_of(TILE).min(rows);
        let (a, b) = d.split_at_mut(at * out);
        rayon::join(
            || sign_band(a, i0, w, magnitude, 1),
            || sign_band(b, i0 + at, w, magnitude, parts - 1),
        );
        return;
    }
    let ws = w.as_slice();
    for t0 in (0..rows).step_by(TILE) {
        for o0 in (0..out).step_by(TILE) {
            for r in t0..(t0 + TILE).min(rows) {
                let i = i0 + r;
                for o in o0..(o0 + TILE).min(out) {
                    let v = ws[o * inp + i];
                    // Branch-free: the signs of trained weights are random.
                    let sign = (v > 0.0) as i32 as f32 - (v < 0.0) as i32 as f32;
                    d[r * out + o] = sign * magnitude(i * out + o);
                }
            }
        }
    }
}

/// `dst = (src * path) .* f'(h)` over `rows` rows: the one step shared by
/// every rule that sends an error through a matrix to a hidden layer.
pub(crate) fn propagate(
    dst: &mut Matrix,
    src: View<'_>,
    path: View<'_>,
    act: Activation,
    h: &Matrix,
    rows: usize,
) {
    debug_assert_eq!(src.nrows(), rows);
    gemm_then(dst, false, 1.0, src, path, &|block| {
        let cols = block.cols.clone();
        act.mul_derivative_rows(
            block
                .rows_mut()
                .map(|(r, row)| (row, &h.row(r)[cols.clone()])),
        );
    });
}

/// Errors down a chain of layers through stand-ins for the transposed
/// weights: `deltas[i] = (deltas[i+1] P_{i+1}^T) .* f'(acts[i+1])` for every
/// hidden layer, where `path(j)` is the `[in_j, out_j]` matrix standing in
/// for `net.layers[j].weight^T`. FA, and both phases of BFA, are this.
pub(crate) fn chain_errors<'m>(
    net: &Mlp,
    acts: &[Matrix],
    deltas: &mut [Matrix],
    rows: usize,
    path: impl Fn(usize) -> &'m Matrix,
) {
    for i in (0..net.hidden_layers()).rev() {
        let (lo, hi) = deltas.split_at_mut(i + 1);
        let p = path(i + 1).view().t();
        propagate(
            &mut lo[i],
            hi[0].rows_view(rows),
            p,
            net.hidden,
            &acts[i + 1],
            rows,
        );
    }
}

/// The stand-in for `forward.{j}.weight`^T in a chain of B matrices where
/// `b[k]` stands for `forward.{k+1}` (FA and the rules built on its path).
pub(crate) fn chain_stand_in(b: &[Matrix], j: usize) -> Option<&Matrix> {
    j.checked_sub(1).and_then(|k| b.get(k))
}

/// Feedback matrices named `feedback.{first + k}.weight`.
pub(crate) fn named<'a>(mats: &'a [Matrix], first: usize) -> Vec<FeedbackTensor<'a>> {
    mats.iter()
        .enumerate()
        .map(|(k, m)| FeedbackTensor {
            name: format!("feedback.{}.weight", first + k),
            shape: vec![m.rows(), m.cols()],
            data: m.as_slice(),
        })
        .collect()
}

/// Mutable counterpart of [`named`].
pub(crate) fn named_mut(mats: &mut [Matrix], first: usize) -> Vec<FeedbackTensorMut<'_>> {
    mats.iter_mut()
        .enumerate()
        .map(|(k, m)| FeedbackTensorMut {
            name: format!("feedback.{}.weight", first + k),
            shape: vec![m.rows(), m.cols()],
            data: m.as_mut_slice(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Parallelism;

    /// The sign-concordant path, built in bands on several threads, is the
    /// one-thread path bit for bit, and is sign(w)ᵀ times the magnitude.
    #[test]
    fn the_banded_sign_path_is_the_sequential_one() {
        let (out, inp) = (333, 517);
        let data = (0..out * inp)
            .map(|i| match i % 7 {
                0 => 0.0,
                k => (i as f32 * 0.37).sin() * k as f32,
            })
            .collect();
        let w = Matrix::from_vec(out, inp, data).unwrap();
        let magnitude = |k: usize| 1.0 + (k % 11) as f32;
        let mut one = Matrix::zeros(inp, out);
        sign_concordant(&mut one, &w, magnitude);
        for i in 0..inp {
            for o in 0..out {
                let v = w.get(o, i);
                let want = if v == 0.0 { 0.0 } else { v.signum() } * magnitude(i * out + o);
                assert_eq!(one.get(i, o), want);
            }
        }
        for threads in [2, 3] {
            let mut many = Matrix::zeros(inp, out);
            Parallelism::threads(threads)
                .unwrap()
                .install(|| sign_concordant(&mut many, &w, magnitude));
            assert_eq!(many, one, "{threads} threads");
        }
    }
}
