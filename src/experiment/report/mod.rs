//! Reports: the runs of a sweep folder as a table laid out like the paper's
//! (rows architectures, columns rules), mean ± sample standard deviation
//! over seeds, with the paper's number beside each cell.
//!
//! - `runs`: the runs read back and grouped into cells;
//! - `stats`: means, deviations, standard errors, orders, distances;
//! - `select`: a setting chosen per cell on the validation split;
//! - `markdown`: the tables, rankings and distances written out, and CSV;
//! - the paper's published numbers are in [`super::paper`].

mod markdown;
mod runs;
mod select;
mod stats;

pub use markdown::{choices_markdown, csv_text, markdown};
pub use runs::{
    collect, group, group_ignoring, is_paper_protocol, variants, Group, RunResult, UpdateAngle,
    Variant,
};
pub use select::{select, Choice};
pub use stats::mean_std;

#[cfg(test)]
mod tests {
    use super::markdown::*;
    use super::runs::*;
    use crate::config::RunConfig;
    use crate::experiment::sweep::CellStatus;
    use crate::rules::RuleKind;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn run(cfg: RunConfig) -> RunResult {
        let row: BTreeMap<String, f64> = [("test_error", 0.02), ("val_error", 0.03)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        RunResult {
            dir: PathBuf::from("r"),
            epochs: vec![row; cfg.epochs],
            config: cfg,
            status: Some(CellStatus::Finished),
        }
    }

    /// A cell of several seeds prints the sample standard deviation, and its
    /// distance to the paper in those deviations; a cell of one seed prints
    /// neither, since one run has no measured spread.
    #[test]
    fn a_cell_prints_a_spread_only_when_it_has_one() {
        let seeded = |seed: u64, test_error: f64| {
            let mut r = run(RunConfig {
                hidden: vec![400],
                epochs: 3,
                seed,
                ..Default::default()
            });
            for row in &mut r.epochs {
                row.insert("test_error".into(), test_error);
            }
            r
        };
        let md = markdown(&group(&[seeded(1, 0.02), seeded(2, 0.04)]));
        // mean 3.00, sample std sqrt(((2-3)^2 + (4-3)^2) / 1) = 1.41
        assert!(md.contains("3.00 ± 1.41 (n=2) (1.95)"), "{md}");
        // (3.00 - 1.95) / 1.41 = 0.74 standard deviations from the paper
        assert!(md.contains("| 1x400 | +1.05 = +0.7 sd (n=2) |"), "{md}");
        let md = markdown(&group(&[seeded(1, 0.05), seeded(2, 0.06)]));
        // (5.50 - 1.95) / 0.71 = 5.0
        assert!(md.contains("| 1x400 | +3.55 = **+5.0 sd** (n=2) |"), "{md}");
        let md = markdown(&group(&[seeded(1, 0.02)]));
        assert!(md.contains("2.00 (n=1) (1.95)"), "{md}");
        assert!(!md.contains("± 0.00"), "{md}");
        assert!(md.contains("| 1x400 | +0.05 (n=1) |"), "{md}");
    }

    /// The paper's numbers stand beside runs of its protocol only.
    #[test]
    fn paper_numbers_only_beside_the_papers_protocol() {
        let paper = RunConfig {
            hidden: vec![400],
            epochs: 3,
            ..Default::default()
        };
        let md = markdown(&group(&[run(paper.clone())]));
        assert!(md.contains("2.00 (n=1) (1.95)"), "{md}");
        let tuned = RunConfig {
            momentum: 0.9,
            lr: 0.03,
            ..paper
        };
        let md = markdown(&group(&[run(tuned)]));
        assert!(md.contains("2.00 (n=1) |"), "{md}");
        assert!(!md.contains("(1.95)"), "{md}");
        assert!(md.contains("not the paper's protocol"), "{md}");
        assert!(!md.contains("ranking of the rules"), "{md}");
        assert!(!md.contains("distance to the paper"), "{md}");
    }

    /// The ranking row orders the rules by their mean last-epoch error, ties
    /// where the printed values tie, and says whether the paper's values of
    /// the same rules are in the same order.
    #[test]
    fn the_ranking_orders_the_rules_against_the_papers() {
        let with_error = |rule: RuleKind, hidden: usize, err: f64| {
            let mut r = run(RunConfig {
                rule,
                hidden: vec![hidden],
                epochs: 2,
                ..Default::default()
            });
            for row in &mut r.epochs {
                row.insert("test_error".into(), err);
            }
            r
        };
        let runs = [
            with_error(RuleKind::Fa, 400, 0.0414),
            with_error(RuleKind::Dfa, 400, 0.0414),
            with_error(RuleKind::Bp, 400, 0.0204),
            with_error(RuleKind::Bfa, 400, 0.0220),
            // 1x800: BFA ahead of BP, unlike the paper (1.92 < 3.14).
            with_error(RuleKind::Bp, 800, 0.0209),
            with_error(RuleKind::Bfa, 800, 0.0199),
            // A rule alone on its row has no ranking.
            with_error(RuleKind::Bp, 100, 0.03),
        ];
        let md = markdown(&group(&runs));
        assert!(
            md.contains("| 1x400 | BP 2.04 < BFA 2.20 < FA 4.14 = DFA 4.14 | BP 1.95 < BFA 2.90 < FA 3.75 = DFA 3.75 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| 1x800 | BFA 1.99 < BP 2.09 | BP 1.92 < BFA 3.14 | no: BFA before BP by 0.10 (1 seed) |"),
            "{md}"
        );
        assert!(!md.contains("| 1x100 | BP"), "{md}");

        // Two seeds a rule: a reversal is measured against the spread.
        let seeded = |rule: RuleKind, seed: u64, err: f64| {
            let mut r = with_error(rule, 400, err);
            r.config.seed = seed;
            r
        };
        // BP at 2.04 and 2.06 against BFA at the two errors given.
        let bp_and_bfa = |bfa1: f64, bfa2: f64| {
            markdown(&group(&[
                seeded(RuleKind::Bp, 1, 0.0204),
                seeded(RuleKind::Bp, 2, 0.0206),
                seeded(RuleKind::Bfa, 1, bfa1),
                seeded(RuleKind::Bfa, 2, bfa2),
            ]))
        };
        let md = bp_and_bfa(0.0190, 0.0194);
        // gap 0.13; se sqrt(0.0141^2/2 + 0.0283^2/2) = 0.0224: 5.8 se
        assert!(
            md.contains("| no: BFA before BP by 0.13 = **5.8 se** |"),
            "{md}"
        );
        let md = bp_and_bfa(0.0195, 0.0211);
        // gap 0.02; se sqrt(0.0141^2/2 + 0.1131^2/2) = 0.0806: 0.2 se
        assert!(
            md.contains("| no: BFA before BP by 0.02 = 0.2 se |"),
            "{md}"
        );

        // A sweep of one rule ranks nothing: no section with an empty table.
        let alone = markdown(&group(&runs[3..4]));
        assert!(alone.contains("| 1x400 |"), "{alone}");
        assert!(!alone.contains("ranking of the rules"), "{alone}");
    }

    /// A network of layers is reported under its name, its angle the mean
    /// over every hidden convolution and dense layer, and it stands apart
    /// from an MLP of the default widths that its config also holds.
    #[test]
    fn networks_of_layers_are_reported_by_name_over_all_their_layers() {
        let net = |rule: RuleKind| {
            let mut r = run(RunConfig {
                rule,
                net: Some(crate::layers::spec::Preset::LenetMnist),
                epochs: 2,
                ..Default::default()
            });
            for row in &mut r.epochs {
                // conv 6, conv 16, conv 120, dense 84: four hidden layers.
                for (i, a) in [10.0, 20.0, 30.0, 80.0].into_iter().enumerate() {
                    row.insert(format!("align_update_{i}"), a);
                }
            }
            r
        };
        let mlp = run(RunConfig {
            rule: RuleKind::Fa,
            epochs: 2,
            ..Default::default()
        });
        assert_eq!(net(RuleKind::Fa).mean_update_angle(), 35.0);
        let groups = group(&[net(RuleKind::Bp), net(RuleKind::Fa), mlp]);
        let names: Vec<&str> = groups.iter().map(|g| g.hidden.as_str()).collect();
        assert_eq!(names, ["1x800", "lenet-mnist", "lenet-mnist"]);
        let md = markdown(&groups);
        assert!(md.contains("| lenet-mnist | 0° · "), "{md}");
        assert!(md.contains("| 35.0° · "), "{md}");
    }
    /// A setting with one value in each cell (a rate tuned for each rule)
    /// is named beside the cells in one table; one that varies within a
    /// cell splits the table, as does the epoch count.
    #[test]
    fn settings_of_each_cell_stand_beside_it_in_one_table() {
        let at = |rule: RuleKind, lr: f32, seed: u64| {
            run(RunConfig {
                rule,
                lr,
                seed,
                momentum: 0.9,
                epochs: 2,
                ..Default::default()
            })
        };
        let tuned = [
            at(RuleKind::Bp, 0.01, 1),
            at(RuleKind::Bp, 0.01, 2),
            at(RuleKind::Fa, 0.001, 1),
            at(RuleKind::Fa, 0.001, 2),
        ];
        let groups = group(&tuned);
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.variant.is_empty()));
        let md = markdown(&groups);
        assert_eq!(
            md.matches("— test error (%) at the last epoch").count(),
            1,
            "{md}"
        );
        assert!(
            md.contains("settings by cell: BP lr=0.01; FA lr=0.001\n"),
            "{md}"
        );
        assert!(md.contains("| model | BP | FA |"), "{md}");

        // FA at two rates: the rate is no longer the cell's.
        let swept = [tuned[0].clone(), tuned[2].clone(), at(RuleKind::Fa, 0.1, 1)];
        let md = markdown(&group(&swept));
        assert!(!md.contains("settings by cell"), "{md}");
        assert!(md.contains("### MNIST (lr=0.001) — test error"), "{md}");
        assert!(md.contains("### MNIST (lr=0.1) — test error"), "{md}");

        // A setting a rule ignores does not count against it: BP has
        // no use for the feedback scale that sets FA's cells apart.
        let mut fa = at(RuleKind::Fa, 0.001, 1);
        fa.config.feedback_scale = Some(crate::rules::FeedbackScale::Receiver);
        let md = markdown(&group(&[tuned[0].clone(), fa]));
        assert!(
            md.contains("settings by cell: BP lr=0.01; FA feedback_scale=receiver, lr=0.001"),
            "{md}"
        );

        // Epochs always split: a caption names one epoch count.
        let mut long = at(RuleKind::Fa, 0.001, 1);
        long.config.epochs = 3;
        long.epochs.push(long.epochs[0].clone());
        let md = markdown(&group(&[tuned[0].clone(), long]));
        assert!(md.contains("### MNIST (epochs=2) — test error"), "{md}");
        assert!(md.contains("### MNIST (epochs=3) — test error"), "{md}");
    }

    /// A two-epoch run of biotorch's MNIST protocol on `network` (the
    /// config's `net` and `layers`), at test error `best` in every epoch.
    fn biotorch_mnist_run(network: RunConfig, rule: RuleKind, best: f64) -> RunResult {
        let mut r = run(RunConfig {
            rule,
            epochs: 2,
            batch_size: 64,
            momentum: 0.9,
            weight_decay: 1e-3,
            lr_milestones: vec![50, 75],
            lr_gamma: 0.1,
            init: crate::rules::InitScheme::Xavier,
            output: crate::loss::Output::SoftmaxCe,
            ..network
        });
        for row in &mut r.epochs {
            row.insert("test_error".into(), best);
        }
        r
    }

    /// biotorch's published number stands beside a cell of its LeNet
    /// protocol, at the epoch of best validation error (where it picks its
    /// model), with the distance to it; never beside another protocol.
    #[test]
    fn biotorch_numbers_only_beside_its_protocol() {
        let benchmark = |rule: RuleKind, best: f64| {
            let lenet = RunConfig {
                net: Some(crate::layers::spec::Preset::LenetMnist),
                ..Default::default()
            };
            biotorch_mnist_run(lenet, rule, best)
        };
        let runs = [
            benchmark(RuleKind::Bp, 0.0073),
            benchmark(RuleKind::Bfa, 0.0217),
        ];
        let md = markdown(&group(&runs));
        assert!(
            md.contains("| lenet-mnist | 0.73 (n=1) (0.91) | 2.17 (n=1) |"),
            "{md}"
        );
        // The last-epoch table points to it and has no number beside.
        assert!(
            md.contains("| lenet-mnist | 0.73 (n=1) | 2.17 (n=1) |"),
            "{md}"
        );
        assert!(md.contains("distance to biotorch"), "{md}");
        // 0.73 - 0.91
        assert!(md.contains("| lenet-mnist | -0.18 (n=1) | — |"), "{md}");
        let csv = csv_text(&group(&runs));
        assert!(
            csv.lines().nth(1).is_some_and(|l| l.ends_with(",,0.91")),
            "{csv}"
        );

        // Trained on every image (no validation split): no best epoch, so
        // no distance, and the table says why.
        let mut all = benchmark(RuleKind::Bp, 0.0073);
        all.config.val_size = 0;
        for row in &mut all.epochs {
            row.remove("val_error");
        }
        let md = markdown(&group(&[all]));
        assert!(
            md.contains("| lenet-mnist | n/a (no validation split) |"),
            "{md}"
        );

        let mut adam = benchmark(RuleKind::Bp, 0.0073);
        adam.config.optimizer = crate::optim::OptimizerKind::Adam;
        let md = markdown(&group(&[adam]));
        assert!(!md.contains("(0.91)"), "{md}");
        assert!(!md.contains("biotorch"), "{md}");
    }

    /// biotorch's numbers were measured on its `biotorch-` networks: beside
    /// `lenet-mnist` (its July 2021 model) the captions say so; beside its
    /// own network, named as a preset or written out in `layers`, they
    /// do not, and the rows carry the preset's name.
    #[test]
    fn biotorch_numbers_say_which_network_they_were_measured_on() {
        use crate::layers::spec::Preset;
        let benchmark = |net: Option<Preset>, layers: Option<&str>| {
            let network = RunConfig {
                net,
                layers: layers.map(str::to_string),
                ..Default::default()
            };
            biotorch_mnist_run(network, RuleKind::Bp, 0.0073)
        };
        let note = "which differ from `lenet-mnist`";
        let old = markdown(&group(&[benchmark(Some(Preset::LenetMnist), None)]));
        assert_eq!(old.matches(note).count(), 2, "{old}");
        let own = Preset::BiotorchLenetMnist;
        for (net, layers) in [(Some(own), None), (None, Some(own.description()))] {
            let md = markdown(&group(&[benchmark(net, layers)]));
            assert!(
                md.contains("| biotorch-lenet-mnist | 0.73 (n=1) (0.91) |"),
                "{md}"
            );
            assert!(md.contains("distance to biotorch"), "{md}");
            assert!(!md.contains("which differ"), "{md}");
        }
    }
    /// An epoch whose probe batch has no output error has no angle: the
    /// alignment table then shows the latest epoch that has one, and says
    /// which; a run with none at all shows n/a.
    #[test]
    fn an_angle_missing_at_the_last_epoch_comes_from_the_latest_that_has_one() {
        let with_angles = |angles: &[f64]| {
            let mut r = run(RunConfig {
                rule: RuleKind::Fa,
                hidden: vec![400],
                epochs: angles.len(),
                ..Default::default()
            });
            for (row, &a) in r.epochs.iter_mut().zip(angles) {
                row.insert("align_update_0".into(), a);
            }
            r
        };
        let md = markdown(&group(&[with_angles(&[50.0, 40.0, f64::NAN])]));
        assert!(md.contains("| 1x400 | 40.0° (from epoch 2) · "), "{md}");
        let md = markdown(&group(&[with_angles(&[50.0, 40.0, 30.0])]));
        assert!(md.contains("| 1x400 | 30.0° · "), "{md}");
        let md = markdown(&group(&[with_angles(&[f64::NAN, f64::NAN])]));
        assert!(md.contains("| 1x400 | n/a · "), "{md}");
    }

    /// A layer without an angle (a zero update: a dead layer) is not hidden
    /// in the mean over layers: the report says how many layers it is over.
    #[test]
    fn a_mean_angle_that_leaves_dead_layers_out_says_so() {
        let mut r = run(RunConfig {
            rule: RuleKind::Fa,
            hidden: vec![400, 400, 400],
            epochs: 1,
            ..Default::default()
        });
        for (i, a) in [f64::NAN, 40.0, 50.0].into_iter().enumerate() {
            r.epochs[0].insert(format!("align_update_{i}"), a);
        }
        let md = markdown(&group(&[r.clone()]));
        assert!(
            md.contains("| 3x400 | 45.0° (over 2 of 3 layers: the others' updates were zero) · "),
            "{md}"
        );
        r.epochs[0].insert("align_update_0".into(), 30.0);
        let md = markdown(&group(&[r]));
        assert!(md.contains("| 3x400 | 40.0° · "), "{md}");
    }
}
