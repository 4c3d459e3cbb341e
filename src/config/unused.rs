//! Which settings have no effect on a run: a setting accepted and then
//! ignored would have its user publish the wrong experiment, so the command
//! line refuses such flags, with the reason.

use super::RunConfig;
use crate::data::DatasetKind;
use crate::rules::{BdfaTarget, InitScheme, RuleKind};

impl RunConfig {
    /// The first of the `explicit` keys (a caller's flags or keyword
    /// settings) that has no effect on this run, and why: what front ends
    /// refuse, as a setting accepted and then ignored would mislead.
    pub fn first_unused_in(&self, explicit: &toml::Table) -> Option<(&'static str, String)> {
        self.unused_settings()
            .into_iter()
            .find(|(key, _)| explicit.contains_key(*key))
    }

    /// The settings (config keys) that have no effect on this run, with the
    /// reason: the command line refuses them when given as flags, since the
    /// user asked for something that would not happen. (A TOML file or a
    /// sweep's base may hold them: one base serves every rule of a grid.)
    pub fn unused_settings(&self) -> Vec<(&'static str, String)> {
        use RuleKind::*;
        let rule = self.rule;
        let mut out = Vec::new();
        let mut unless = |used: bool, key: &'static str, why: &str| {
            if !used {
                out.push((key, why.to_string()));
            }
        };
        let learns_feedback = matches!(rule, Bfa | Bdfa | Dkp);
        let feedback_why = match rule {
            Kp => "--rule kp steps its feedback weights with the forward optimizer".to_string(),
            _ => format!("--rule {rule} has no learning feedback weights"),
        };
        for key in ["feedback_lr", "feedback_optimizer"] {
            unless(learns_feedback, key, &feedback_why);
        }
        let feedback_opt = self.feedback_optimizer.unwrap_or(self.optimizer);
        unless(
            learns_feedback && feedback_opt == crate::optim::OptimizerKind::Sgd,
            "feedback_momentum",
            "it applies to BFA's, BDFA's and DKP's feedback weights under sgd",
        );
        unless(rule == Bfa, "bfa_output", "it applies to --rule bfa only");
        unless(
            rule == Bfa,
            "bfa_feedback_scale",
            "it applies to --rule bfa only",
        );
        unless(rule == Usf, "usf_scale", "it applies to --rule usf only");
        unless(
            rule == Dfa,
            "dfa_projection",
            "it applies to --rule dfa only",
        );
        for key in ["bdfa_update", "bdfa_target"] {
            unless(rule == Bdfa, key, "it applies to --rule bdfa only");
        }
        unless(
            rule == Bdfa && self.bdfa_target != BdfaTarget::Label,
            "bdfa_alpha",
            "it applies to --rule bdfa with --bdfa-target mixed or reference",
        );
        unless(
            matches!(rule, Fa | Dfa | Bdfa | Kp | Frsf | Brsf | Drtp | Dkp),
            "feedback_scale",
            &format!("--rule {rule} has no fixed random feedback"),
        );
        let kolen_pollack = matches!(rule, Kp | Dkp);
        unless(
            kolen_pollack,
            "kp_decay",
            "it applies to --rule kp and --rule dkp only",
        );
        unless(
            !kolen_pollack,
            "weight_decay",
            "--rule kp and dkp decay forward and feedback weights by --kp-decay",
        );
        let adam = self.optimizer == crate::optim::OptimizerKind::Adam
            || (learns_feedback && feedback_opt == crate::optim::OptimizerKind::Adam);
        for key in ["beta1", "beta2", "eps"] {
            unless(adam, key, "it applies to --optimizer adam only");
        }
        // Momentum is also the feedback momentum's default.
        let feedback_takes_momentum = learns_feedback
            && feedback_opt == crate::optim::OptimizerKind::Sgd
            && self.feedback_momentum.is_none();
        unless(
            self.optimizer == crate::optim::OptimizerKind::Sgd || feedback_takes_momentum,
            "momentum",
            "it applies to --optimizer sgd only",
        );
        unless(
            !(rule == Bp && self.init == InitScheme::Reference),
            "init",
            "the published code initializes BP as the default does",
        );
        let described = self.net.is_some() || self.layers.is_some();
        for key in ["hidden", "activation"] {
            unless(
                !described,
                key,
                "--net or --layers names every layer (and its activation)",
            );
        }
        unless(
            !self.lr_milestones.is_empty(),
            "lr_gamma",
            "it applies at --lr-milestones, and none are set",
        );
        unless(
            self.dataset == DatasetKind::Idx,
            "classes",
            "mnist and cifar10 have 10 classes; it applies to --dataset idx",
        );
        out
    }
}
