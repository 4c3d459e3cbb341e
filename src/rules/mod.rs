//! Learning rules: how the error reaches each hidden layer, and whether the
//! rule owns feedback weights that learn. One rule per file.
//!
//! A rule answers one small question per hidden layer `p` (the output of
//! `forward.{p}`), through [`LearningRule::error_path`]:
//! - back across the next layer through its own weights (BP), or through a
//!   stand-in for them (FA's fixed `B`, the sign rules' `sign(W)`, KP's
//!   learned `B`, BFA's feedback weights);
//! - or a projection `D` of the output error (DFA, BDFA, DKP) or of the
//!   target (DRTP) straight to the layer's output;
//! - or, for biotorch's DFA, a projection of the output error to the next
//!   layer's input, carried back from there as BP's error would be.
//!
//! The shared driver ([`backward::hidden_deltas`]) walks the layers with
//! those answers, and the trainer then forms every weight gradient the same
//! way (docs/rules.md). Rules never see a layer's kind: a stand-in is made in
//! the layer's own stand-in layout ([`crate::layers::Layer::stand_in_zeros`]).
//! Rules whose feedback learns train it after the forward update
//! ([`LearningRule::train_feedback`]) with the shared optimizer over
//! parameter groups.

pub mod backward;
mod bdfa;
mod bfa;
mod bp;
mod brsf;
mod dfa;
mod dfa_kernel;
mod dkp;
mod drtp;
mod fa;
mod frsf;
mod kp;
mod options;
mod rule;
mod usf;

pub use bdfa::Bdfa;
pub use bfa::Bfa;
pub use bp::Bp;
pub use brsf::Brsf;
pub use dfa::Dfa;
pub use dfa_kernel::DfaKernel;
pub use dkp::Dkp;
pub use drtp::Drtp;
pub use fa::Fa;
pub use frsf::Frsf;
pub use kp::{Kp, KP_DEFAULT_DECAY};
pub use options::{
    BdfaTarget, BdfaUpdate, DfaProjection, FeedbackScale, InitScheme, RuleOptions, UsfScale,
    REFERENCE_FEEDBACK_LR,
};
pub use rule::{
    named_projections, named_projections_mut, ErrorPath, FeedbackStep, LearningRule, RuleKind,
    StandIns,
};
pub use usf::Usf;

use crate::network::Network;
use rand::Rng;

/// Builds `kind` for `net`, possibly re-initializing `net` as the init scheme requires.
pub fn build(
    kind: RuleKind,
    net: &mut Network,
    opts: &RuleOptions,
    rng: &mut impl Rng,
) -> Box<dyn LearningRule> {
    match kind {
        RuleKind::Bp => Box::new(Bp),
        RuleKind::Fa => Box::new(Fa::new(net, opts.init, opts.feedback_scale, rng)),
        RuleKind::Dfa => match opts.dfa_projection {
            DfaProjection::Unit => Box::new(Dfa::new(net, opts.init, opts.feedback_scale, rng)),
            DfaProjection::Kernel => {
                Box::new(DfaKernel::new(net, opts.init, opts.feedback_scale, rng))
            }
        },
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
        RuleKind::Usf => Box::new(Usf::with_scale(net, opts.usf_scale)),
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
