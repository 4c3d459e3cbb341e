//! The shared driver of every rule: the errors at the hidden layers, from
//! the output error and each layer's [`ErrorPath`].

use super::ErrorPath;
use crate::layers::{propagate, Through};
use crate::network::{Activations, Network};
use crate::tensor::Matrix;

/// Writes `deltas[p]`, the error at the pre-activation of every hidden layer
/// `p` of `net`, top down, from `deltas[L]` (the output error `e`, filled on
/// entry), the forward activations `acts` and the one-hot `targets`, over the
/// first `rows` rows. `path(p)` says how the error reaches layer `p`'s output.
pub fn hidden_deltas<'r>(
    net: &Network,
    acts: &mut Activations,
    deltas: &mut [Matrix],
    targets: &Matrix,
    rows: usize,
    path: impl Fn(usize) -> ErrorPath<'r>,
) {
    let top = net.hidden_layers();
    let Activations {
        outputs,
        workspaces,
    } = acts;
    for p in (0..top).rev() {
        let (lo, hi) = deltas.split_at_mut(p + 1);
        let dst = &mut lo[p];
        let (act, h) = (net.layers[p].activation, &outputs[p + 1]);
        let through = match path(p) {
            ErrorPath::Weights => Through::Weights,
            ErrorPath::StandIn(b) => Through::StandIn(b),
            ErrorPath::OutputError(d) => {
                let e = hi[top - p - 1].rows_view(rows);
                propagate(dst, e, d.view().t(), act, h, rows);
                continue;
            }
            ErrorPath::OutputErrorAtNextInput(k) => {
                let e = hi[top - p - 1].rows_view(rows);
                let ws = &mut workspaces[p + 1];
                net.layers[p + 1].backward_from_input(e, k.view().t(), dst, ws, act, h, rows);
                continue;
            }
            ErrorPath::Target(d) => {
                propagate(dst, targets.rows_view(rows), d.view().t(), act, h, rows);
                continue;
            }
        };
        net.layers[p + 1].backward_input(
            through,
            &hi[0],
            dst,
            &mut workspaces[p + 1],
            act,
            h,
            rows,
        );
    }
}
