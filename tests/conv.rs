//! Convolutional networks: each kernel against a naive loop, a
//! finite-difference check of backpropagation through conv, relu, max-pool
//! and dense, and the identities between rules on convolutions.

mod common;

use biprop::activation::Activation;
use biprop::layers::spec::{build, parse};
use biprop::layers::{bias_grad, Conv2d, Kind, Layer, Layout, Shape, Through, Workspace};
use biprop::loss::Output;
use biprop::network::Network;
use biprop::optim::OptimConfig;
use biprop::rules::{
    self, Bp, Dfa, DfaKernel, DfaProjection, ErrorPath, Fa, FeedbackScale, InitScheme, Kp,
    LearningRule, RuleKind, RuleOptions, StandIns, Usf, UsfScale,
};
use biprop::tensor::{gemm, GemmBackend, Matrix, Parallelism};
use biprop::train::Trainer;
use biprop::update::step_weight;
use common::synthetic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..rows * cols)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

/// `x[n]` at `(c, y, x)` in `layout`, or 0 in the padding.
fn at(x: &Matrix, n: usize, g: &Conv2d, c: usize, y: isize, xx: isize) -> f64 {
    let s = g.input;
    if y < 0 || xx < 0 || y >= s.h as isize || xx >= s.w as isize {
        return 0.0;
    }
    x.row(n)[g.layout.index(s, c, y as usize, xx as usize)] as f64
}

/// The convolution by its definition, in f64: `[n][oy][ox][o]` (channels last).
#[allow(clippy::needless_range_loop)]
fn naive_forward(g: &Conv2d, x: &Matrix, w: &Matrix, b: &[f32], rows: usize) -> Vec<f64> {
    let (ho, wo, (kh, kw)) = (g.out_h(), g.out_w(), g.kernel);
    let (s, p) = (g.stride as isize, g.padding as isize);
    let mut y = Vec::new();
    for n in 0..rows {
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..g.out_channels {
                    let mut acc = b[o] as f64;
                    for c in 0..g.input.c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let wv = w.get(o, (c * kh + ky) * kw + kx) as f64;
                                let iy = oy as isize * s - p + ky as isize;
                                let ix = ox as isize * s - p + kx as isize;
                                acc += wv * at(x, n, g, c, iy, ix);
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
    }
    y
}

/// The error at the input, `dx = conv_transpose(delta, W)`, by its definition.
fn naive_input_grad(g: &Conv2d, delta: &Matrix, w: &Matrix, rows: usize) -> Vec<f64> {
    let (ho, wo, (kh, kw)) = (g.out_h(), g.out_w(), g.kernel);
    let (s, p) = (g.stride as isize, g.padding as isize);
    let mut dx = vec![0.0f64; rows * g.input.len()];
    for n in 0..rows {
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..g.out_channels {
                    let d = delta.row(n)[(oy * wo + ox) * g.out_channels + o] as f64;
                    for c in 0..g.input.c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = oy as isize * s - p + ky as isize;
                                let ix = ox as isize * s - p + kx as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.input.h as isize
                                    || ix >= g.input.w as isize
                                {
                                    continue;
                                }
                                let i = g.layout.index(g.input, c, iy as usize, ix as usize);
                                dx[n * g.input.len() + i] +=
                                    w.get(o, (c * kh + ky) * kw + kx) as f64 * d;
                            }
                        }
                    }
                }
            }
        }
    }
    dx
}

/// The summed weight gradient `dW[o][c][ky][kx]` by its definition.
fn naive_weight_grad(g: &Conv2d, x: &Matrix, delta: &Matrix, rows: usize) -> Vec<f64> {
    let (ho, wo, (kh, kw)) = (g.out_h(), g.out_w(), g.kernel);
    let (s, p) = (g.stride as isize, g.padding as isize);
    let mut dw = vec![0.0f64; g.out_channels * g.patch_len()];
    for n in 0..rows {
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..g.out_channels {
                    let d = delta.row(n)[(oy * wo + ox) * g.out_channels + o] as f64;
                    for c in 0..g.input.c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = oy as isize * s - p + ky as isize;
                                let ix = ox as isize * s - p + kx as isize;
                                dw[o * g.patch_len() + (c * kh + ky) * kw + kx] +=
                                    d * at(x, n, g, c, iy, ix);
                            }
                        }
                    }
                }
            }
        }
    }
    dw
}

/// The summed bias gradient `db[o]`: the error at channel `o`, over every
/// sample and position (the output is channels last).
fn naive_bias_grad(g: &Conv2d, delta: &Matrix, rows: usize) -> Vec<f64> {
    let positions = g.out_h() * g.out_w();
    let mut db = vec![0.0f64; g.out_channels];
    for n in 0..rows {
        for p in 0..positions {
            for (o, b) in db.iter_mut().enumerate() {
                *b += delta.row(n)[p * g.out_channels + o] as f64;
            }
        }
    }
    db
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 1e-5 * scale,
            "{what}: element {i} is {g}, the definition gives {w}"
        );
    }
}

/// The convolution's three maps and its bias gradient equal their
/// definitions, across strides,
/// paddings, odd and rectangular sizes, both input layouts, on 1 and 3 threads.
#[test]
fn conv_forward_and_both_gradients_match_naive_loops() {
    let cases = [
        (Shape::new(3, 7, 6), 4, (3, 3), 1, 0),
        (Shape::new(2, 9, 7), 5, (3, 2), 2, 1),
        (Shape::new(1, 8, 8), 3, (5, 5), 1, 2),
        (Shape::new(4, 5, 11), 2, (2, 4), 3, 2),
        (Shape::new(3, 6, 6), 7, (1, 1), 1, 0),
    ];
    let rows = 3;
    for (k, &(input, out_channels, kernel, stride, padding)) in cases.iter().enumerate() {
        for layout in [Layout::Chw, Layout::Hwc] {
            let g = Conv2d {
                input,
                layout,
                out_channels,
                kernel,
                stride,
                padding,
            };
            g.check().unwrap();
            let mut layer = Layer::zeros(Kind::Conv2d(g), None, Vec::new());
            layer.weight = random(out_channels, g.patch_len(), 10 + k as u64);
            layer.bias = random(1, out_channels, 20 + k as u64).as_slice().to_vec();
            let x = random(rows + 1, input.len(), 30 + k as u64);
            let delta = random(rows + 1, g.output().len(), 40 + k as u64);
            let want_y = naive_forward(&g, &x, &layer.weight, &layer.bias, rows);
            let want_dx = naive_input_grad(&g, &delta, &layer.weight, rows);
            let want_dw = naive_weight_grad(&g, &x, &delta, rows);
            let want_db = naive_bias_grad(&g, &delta, rows);
            for threads in [1, 3] {
                let what = format!("case {k} {layout:?} {threads} threads");
                let par = Parallelism::threads(threads).unwrap();
                par.install(|| {
                    let mut ws = layer.workspace(rows + 1, false);
                    let mut y = Matrix::zeros(rows + 1, g.output().len());
                    layer.forward(&x, &mut y, &mut ws, rows);
                    assert_close(y.rows_slice(rows), &want_y, &format!("forward, {what}"));
                    let mut dx = Matrix::zeros(rows + 1, input.len());
                    let none = Matrix::zeros(0, 0);
                    layer.backward_input(
                        Through::Weights,
                        &delta,
                        &mut dx,
                        &mut ws,
                        None,
                        &none,
                        rows,
                    );
                    assert_close(
                        dx.rows_slice(rows),
                        &want_dx,
                        &format!("input gradient, {what}"),
                    );
                    let mut dw = Matrix::zeros(out_channels, g.patch_len());
                    let mut product = dw.clone();
                    layer.weight_grad_into(&x, &ws, &delta, rows, &mut dw, &mut product);
                    assert_close(dw.as_slice(), &want_dw, &format!("weight gradient, {what}"));
                    assert_eq!(layer.kind.out_layout(), Layout::Hwc);
                    let mut db = vec![0.0f32; out_channels];
                    bias_grad(&layer.kind, &mut db, &delta, rows, 1.0);
                    assert_close(&db, &want_db, &format!("bias gradient, {what}"));
                    // The update's own path: the optimizer's step from the
                    // operands, its product in whatever column order.
                    let mut stepped = Matrix::zeros(out_channels, g.patch_len());
                    let mut group = biprop::optim::ParamGroup::new(sgd(1.0), [stepped.shape()]);
                    group.begin_step();
                    let operands = layer.grad_operands(&x, &ws, &delta, rows);
                    let kind = &layer.kind;
                    step_weight(
                        &mut group,
                        0,
                        kind,
                        &mut stepped,
                        &mut product,
                        -1.0,
                        operands,
                    );
                    assert_close(stepped.as_slice(), &want_dw, &format!("update, {what}"));
                });
            }
        }
    }
}

fn conv_net(text: &str, input: Shape, act_seed: u64) -> Network {
    let plan = build(input, &parse(text).unwrap()).unwrap();
    Network::new(
        input,
        plan,
        Output::SoftmaxCe,
        &mut ChaCha8Rng::seed_from_u64(act_seed),
    )
}

fn sgd(lr: f32) -> OptimConfig {
    OptimConfig {
        lr,
        ..Default::default()
    }
}

/// Layer `l`'s bias `k`, or its weight `k` in row-major order.
fn param(t: &mut Trainer, l: usize, is_bias: bool, k: usize) -> &mut f32 {
    let layer = &mut t.net.layers[l];
    if is_bias {
        &mut layer.bias[k]
    } else {
        &mut layer.weight.as_mut_slice()[k]
    }
}

/// Backpropagation's weight and bias gradients through conv, relu, max-pool,
/// flatten and dense equal central finite differences of the mean loss.
#[test]
fn bp_through_conv_relu_maxpool_dense_matches_finite_differences() {
    let input = Shape::new(2, 6, 6);
    let net = conv_net(
        "conv 3 3x3 pad 1, relu, maxpool 2, conv 4 2x2, tanh, flatten, dense 5",
        input,
        3,
    );
    let rows = 4;
    let ds = synthetic(rows, input.len(), 5, 7);
    let idx: Vec<usize> = (0..rows).collect();
    let mut t = Trainer::new(net, Box::new(Bp), sgd(0.1), rows);
    t.load_batch(&ds, &idx);
    t.compute_errors(rows);
    let grads: Vec<(Vec<f32>, Vec<f32>)> = (0..t.net.layers.len())
        .map(|l| {
            let acts = t.activations();
            let layer = &t.net.layers[l];
            let (mut g, mut product) = (layer.weight.clone(), layer.weight.clone());
            let (ws, delta) = (&acts.workspaces[l], &t.deltas()[l]);
            layer.weight_grad_into(&acts[l], ws, delta, rows, &mut g, &mut product);
            let mut b = vec![0.0f32; layer.bias.len()];
            bias_grad(&layer.kind, &mut b, delta, rows, 1.0 / rows as f32);
            (g.as_slice().iter().map(|v| v / rows as f32).collect(), b)
        })
        .collect();
    let (mut weights, mut biases) = (0, 0);
    for (l, (g, b)) in grads.iter().enumerate() {
        let params = g
            .iter()
            .enumerate()
            .step_by(3)
            .map(|(k, &gk)| (false, k, gk))
            .chain(b.iter().enumerate().map(|(k, &gk)| (true, k, gk)));
        for (is_bias, k, gk) in params {
            let w0 = *param(&mut t, l, is_bias, k);
            let mut loss_at = |w: f32| {
                *param(&mut t, l, is_bias, k) = w;
                t.compute_errors(rows).mean_loss()
            };
            // Small enough that no relu or max-pool window changes its winner.
            let h = 1e-3f32;
            let fd = (loss_at(w0 + h) - loss_at(w0 - h)) / (2.0 * h as f64);
            loss_at(w0);
            let what = if is_bias { "bias" } else { "weight" };
            assert!(
                (fd - gk as f64).abs() < 3e-3 * (1.0 + gk.abs() as f64),
                "layer {l} {what} {k}: backprop {gk} vs finite difference {fd}"
            );
            if is_bias {
                biases += 1;
            } else {
                weights += 1;
            }
        }
    }
    assert!(weights > 50, "{weights} weights checked");
    assert_eq!(biases, 3 + 4 + 5, "every bias checked");
}

fn step_with(rule: Box<dyn LearningRule>, net0: &Network, rows: usize, steps: u64) -> Trainer {
    step_on(GemmBackend::Auto, rule, net0, rows, steps)
}

/// [`step_with`] with the products on `backend`.
fn step_on(
    backend: GemmBackend,
    rule: Box<dyn LearningRule>,
    net0: &Network,
    rows: usize,
    steps: u64,
) -> Trainer {
    let mut t = Trainer::new(net0.clone(), rule, sgd(0.2), rows);
    t.set_backend(backend);
    for k in 0..steps {
        let ds = synthetic(rows, net0.inputs(), net0.outputs(), 50 + k);
        t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
        t.step(rows).unwrap();
    }
    t
}

/// A network of convolutions and pooling only (its outputs a 10x1x1 map).
fn all_conv() -> Network {
    conv_net(
        "conv 4 3x3 pad 1, relu, maxpool 2, conv 6 3x3, relu, avgpool 2 stride 1, conv 10 1x1",
        Shape::new(2, 8, 8),
        5,
    )
}

/// FA whose feedback kernels are the forward kernels is BP, bit for bit,
/// step after step, with either GEMM backend: a convolution's stand-in has
/// its weight's layout and takes the same product. (A dense layer's
/// stand-in is `[in, out]`, read through a transposed view: the same sums,
/// but the gemm crate adds them in another order for the other layout, so
/// the network here has no dense layer; tests/rules_beyond.rs pins dense
/// layers to a tolerance.)
#[test]
fn fa_with_the_forward_kernels_is_bp_bit_for_bit() {
    let net0 = all_conv();
    let fa = |net: &Network| Fa {
        b: StandIns::from_fn(net, |_, l| l.weight_as_stand_in()),
    };
    // B = W at the start only: after a step W moves and FA's B does not,
    // so compare one step, then random B for the negative check.
    for backend in GemmBackend::CONCRETE {
        let a = step_on(backend, Box::new(fa(&net0)), &net0, 6, 1);
        let b = step_on(backend, Box::new(Bp), &net0, 6, 1);
        assert_eq!(a.net, b.net, "{backend}: FA with B = W and BP differ");
        for (da, db) in a.deltas().iter().zip(b.deltas()) {
            assert_eq!(da, db, "{backend}");
        }
    }
    let b = step_with(Box::new(Bp), &net0, 6, 1);
    let mut scratch = net0.clone();
    let random_fa = Fa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(9),
    );
    let c = step_with(Box::new(random_fa), &net0, 6, 1);
    assert_ne!(
        c.net.layers[0].weight, b.net.layers[0].weight,
        "the test can fail"
    );
}

/// KP whose feedback kernels start at the forward kernels is BP on
/// convolutions, bit for bit, step after step, with momentum and weight
/// decay, on either GEMM backend: W and B take the same update (the kernel
/// gradient, back in the weight's layout from the tap-major product), so B
/// stays W. Bit for bit on a network without dense layers, for the reason
/// `fa_with_the_forward_kernels_is_bp_bit_for_bit` gives; with flatten and
/// dense layers above the convolutions, to 1e-5 of the largest value (as
/// tests/rules_beyond.rs pins dense networks).
#[test]
fn kp_started_at_the_forward_kernels_is_bp_on_convolutions() {
    let mixed = conv_net(
        "conv 4 3x3 pad 1, relu, maxpool 2, conv 6 3x3, relu, flatten, dense 7, dense 5",
        Shape::new(2, 8, 8),
        6,
    );
    for backend in GemmBackend::CONCRETE {
        kp_is_bp(&all_conv(), backend, 0.0);
        kp_is_bp(&mixed, backend, 1e-5);
    }
}

/// Five steps of KP started at `B = W` and of BP on `net0`, on `backend`:
/// weights, errors and `B - W` within `tol` of the largest magnitude (0:
/// bit for bit); and KP from a random `B` differs.
fn kp_is_bp(net0: &Network, backend: GemmBackend, tol: f32) {
    let opt = OptimConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.01,
        ..Default::default()
    };
    let rows = 6;
    let kp_from = |b: StandIns| Box::new(Kp::from_stand_ins(net0, b, opt));
    let mut scratch = net0.clone();
    let random = Fa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(9),
    )
    .b;
    let forward_kernels = StandIns::from_fn(net0, |_, l| l.weight_as_stand_in());
    let mut kp = Trainer::new(net0.clone(), kp_from(forward_kernels), opt, rows);
    let mut bp = Trainer::new(net0.clone(), Box::new(Bp), opt, rows);
    let mut random_kp = Trainer::new(net0.clone(), kp_from(random), opt, rows);
    for t in [&mut kp, &mut bp, &mut random_kp] {
        t.set_backend(backend);
    }
    let same = |a: &[f32], b: &[f32], what: &str| {
        if tol == 0.0 {
            assert_eq!(a, b, "{what} differ");
        } else {
            let d = common::max_abs_diff(a, b);
            assert!(d <= tol * common::max_abs(b), "{what} differ by {d}");
        }
    };
    for k in 0..5 {
        let ds = synthetic(rows, net0.inputs(), net0.outputs(), 70 + k);
        for t in [&mut kp, &mut bp, &mut random_kp] {
            t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
            t.step(rows).unwrap();
        }
        let at = format!("{backend}, tolerance {tol}, step {k}");
        for (j, (a, b)) in kp.net.layers.iter().zip(&bp.net.layers).enumerate() {
            same(
                a.weight.as_slice(),
                b.weight.as_slice(),
                &format!("{at}: weights {j}"),
            );
            same(&a.bias, &b.bias, &format!("{at}: biases {j}"));
        }
        for (j, (a, b)) in kp.deltas().iter().zip(bp.deltas()).enumerate() {
            same(a.as_slice(), b.as_slice(), &format!("{at}: errors {j}"));
        }
        for j in 1..net0.layers.len() {
            let b = common::stand_in(&kp, j).expect("KP has a stand-in");
            let w = kp.net.layers[j].weight_as_stand_in();
            same(
                b.as_slice(),
                w.as_slice(),
                &format!("{at}: B and W of layer {j}"),
            );
        }
    }
    assert_ne!(&kp.net, net0, "the steps moved the weights");
    // The same measure as `same`, so that a random B falls well outside
    // the tolerance the identity is held to.
    let bp_weights = bp.net.layers[0].weight.as_slice();
    let d = common::max_abs_diff(random_kp.net.layers[0].weight.as_slice(), bp_weights);
    let scale = common::max_abs(bp_weights);
    assert!(
        d > 100.0 * tol * scale && d > 0.0,
        "the test can fail: random B is {d} from BP (largest weight {scale})"
    );
}

/// uSF's stand-in for a convolution is exactly `sign(W) m`, element by
/// element, with `m = 1 / sqrt(C kh kw)` (`fan-in`) or `sqrt(2 / (C kh kw +
/// C_out kh kw))` (`xavier`, biotorch's), and the errors it carries are FA's
/// with that kernel.
#[test]
fn usf_on_convolutions_uses_exactly_the_signs_of_the_kernels() {
    for scale in [UsfScale::FanIn, UsfScale::Xavier] {
        usf_on_convolutions_at(scale);
    }
}

fn usf_on_convolutions_at(scale: UsfScale) {
    // By hand, not through the rule's own function.
    let magnitude = |l: &Layer| match (scale, &l.kind) {
        (UsfScale::FanIn, Kind::Conv2d(c)) => {
            1.0 / ((c.input.c * c.kernel.0 * c.kernel.1) as f32).sqrt()
        }
        (UsfScale::Xavier, Kind::Conv2d(c)) => {
            let area = c.kernel.0 * c.kernel.1;
            (2.0 / ((c.input.c + c.out_channels) * area) as f32).sqrt()
        }
        (UsfScale::FanIn, Kind::Dense(d)) => 1.0 / (d.inputs as f32).sqrt(),
        (UsfScale::Xavier, Kind::Dense(d)) => (2.0 / (d.inputs + d.outputs) as f32).sqrt(),
        _ => unreachable!("lenet has no transposed convolution"),
    };
    let mut net0 = all_conv();
    net0.layers[1].weight.as_mut_slice()[5] = 0.0;
    let mut t = Trainer::new(
        net0.clone(),
        Box::new(Usf::with_scale(&net0, scale)),
        sgd(0.2),
        6,
    );
    let ds = synthetic(6, net0.inputs(), 10, 3);
    t.load_batch(&ds, &(0..6).collect::<Vec<_>>());
    t.compute_errors(6);
    for j in 1..net0.layers.len() {
        let w = &t.net.layers[j].weight;
        let m = magnitude(&t.net.layers[j]);
        let b = common::stand_in(&t, j).unwrap();
        for (k, (&bv, &wv)) in b.as_slice().iter().zip(w.as_slice()).enumerate() {
            let sign = if wv > 0.0 {
                1.0
            } else if wv < 0.0 {
                -1.0
            } else {
                0.0
            };
            assert_eq!(bv, sign * m, "{scale:?}: layer {j} element {k}");
        }
    }
    assert_eq!(
        common::stand_in(&t, 1).unwrap().as_slice()[5],
        0.0,
        "zero weight, zero path"
    );
    let signs = StandIns::from_fn(&net0, |_, l| {
        let mut b = l.stand_in_zeros();
        let m = magnitude(l);
        l.sign_stand_in(&mut b, |_| m);
        b
    });
    let mut fa = Trainer::new(net0.clone(), Box::new(Fa { b: signs }), sgd(0.2), 6);
    fa.load_batch(&ds, &(0..6).collect::<Vec<_>>());
    fa.compute_errors(6);
    assert_eq!(t.deltas(), fa.deltas());
}

/// DFA's projections for `net0` drawn from `seed` (default init, so `net0`
/// itself is left as it is).
fn dfa_of(net0: &Network, seed: u64) -> Dfa {
    Dfa::new(
        &mut net0.clone(),
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(seed),
    )
}

/// DFA on a network whose only hidden layer is a convolution: the error at
/// the convolution's output is `(e D^T) .* relu'(h)`, computed here by hand.
#[test]
fn dfa_on_a_convolution_is_its_formula() {
    let input = Shape::new(1, 5, 5);
    let net0 = conv_net("conv 3 3x3, relu, flatten, dense 5", input, 2);
    let dfa = dfa_of(&net0, 4);
    let d = dfa.d[0].clone();
    assert_eq!(d.shape(), (27, 5), "D is [C H W, classes]");
    let rows = 4;
    let mut t = Trainer::new(net0.clone(), Box::new(dfa), sgd(0.2), rows);
    let ds = synthetic(rows, input.len(), 5, 8);
    t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
    t.compute_errors(rows);
    let (e, h) = (&t.deltas()[1], &t.activations()[1]);
    for r in 0..rows {
        for j in 0..27 {
            let s: f64 = (0..5)
                .map(|c| e.get(r, c) as f64 * d.get(j, c) as f64)
                .sum();
            let want = if h.get(r, j) > 0.0 { s } else { 0.0 };
            let got = t.deltas()[0].get(r, j) as f64;
            assert!((got - want).abs() < 1e-6, "({r}, {j}): {got} vs {want}");
        }
    }
    assert!(matches!(t.rule.error_path(0), ErrorPath::OutputError(_)));
}

/// biotorch's DFA (`dfa_projection = "kernel"`) on conv, relu, max-pool,
/// conv (padded), relu, flatten, dense, relu, dense: each hidden error
/// computed here by hand from its definition. Dense 5 gets `(e B_3) .*
/// relu'`; the second convolution `e B_2` at the flattened input of dense 5,
/// put back in its map; the first convolution the transposed convolution of
/// `e`, repeated at each of the second convolution's positions, with the
/// kernel `B_1` `[C, c_in, kh, kw]`, routed by the max-pool to the winner of
/// each window. Then kernels set from outside (as a checkpoint loads them)
/// are the ones the next errors use.
#[test]
fn biotorch_s_dfa_on_convolutions_is_its_formula() {
    let input = Shape::new(2, 8, 8);
    let text =
        "conv 3 3x3, relu, maxpool 2, conv 4 3x3 pad 1, relu, flatten, dense 5, relu, dense 3";
    let net0 = conv_net(text, input, 2);
    let rule = DfaKernel::new(
        &mut net0.clone(),
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(4),
    );
    let named = rule.feedback_tensors();
    let shapes: Vec<&[usize]> = named.iter().map(|x| x.shape.as_slice()).collect();
    assert_eq!(shapes, [&[3, 3, 3, 3][..], &[3, 36], &[3, 5]]);
    let names: Vec<&str> = named.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "feedback.1.weight",
            "feedback.2.weight",
            "feedback.3.weight"
        ]
    );
    let rows = 4;
    let mut t = Trainer::new(net0.clone(), Box::new(rule), sgd(0.2), rows);
    let ds = synthetic(rows, input.len(), 3, 8);
    t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
    let mut firsts = Vec::new();
    for round in 0..2 {
        t.compute_errors(rows);
        let b: Vec<Matrix> = t
            .rule
            .feedback_tensors()
            .iter()
            .map(|x| {
                let rows = x.shape[0];
                Matrix::from_vec(rows, x.data.len() / rows, x.data.to_vec()).unwrap()
            })
            .collect();
        let (acts, deltas) = (t.activations(), t.deltas());
        let e = &deltas[3];
        let times_e = |n: usize, b: &Matrix, j: usize| -> f64 {
            (0..3)
                .map(|c| e.get(n, c) as f64 * b.get(c, j) as f64)
                .sum()
        };
        let relu = |h: f32, v: f64| if h > 0.0 { v } else { 0.0 };
        let close = |got: f32, want: f64, what: &str| {
            let ok = (got as f64 - want).abs() < 1e-6;
            assert!(ok, "round {round}, {what}: {got} vs {want}");
        };
        // Dense 5.
        for n in 0..rows {
            for j in 0..5 {
                let want = relu(acts[3].get(n, j), times_e(n, &b[2], j));
                close(deltas[2].get(n, j), want, &format!("dense ({n}, {j})"));
            }
        }
        // The second convolution: its map is 4x3x3 channels last, flattened
        // in C, H, W order.
        let map = Shape::new(4, 3, 3);
        for n in 0..rows {
            for ch in 0..4 {
                for y in 0..3 {
                    for x in 0..3 {
                        let at = Layout::Hwc.index(map, ch, y, x);
                        let flat = (ch * 3 + y) * 3 + x;
                        let want = relu(acts[2].get(n, at), times_e(n, &b[1], flat));
                        let what = format!("conv 4 ({n}, {ch}, {y}, {x})");
                        close(deltas[1].get(n, at), want, &what);
                    }
                }
            }
        }
        // The first convolution: e repeated at the 3x3 positions of the
        // second, through B_1, to the pooled 3x3x3 map, then to the winner
        // of each 2x2 window of the 3x6x6 map.
        let Kind::Conv2d(g) = &t.net.layers[1].kind else {
            panic!("layer 1 is a convolution")
        };
        let g_classes = Conv2d {
            out_channels: 3,
            ..*g
        };
        let repeated: Vec<f32> = (0..rows)
            .flat_map(|n| (0..g.positions() * 3).map(move |j| e.get(n, j % 3)))
            .collect();
        let repeated_e = Matrix::from_vec(rows, g.positions() * 3, repeated).unwrap();
        let pooled = naive_input_grad(&g_classes, &repeated_e, &b[0], rows);
        let full = Shape::new(3, 6, 6);
        for n in 0..rows {
            let h = acts[1].row(n);
            for ch in 0..3 {
                for py in 0..3 {
                    for px in 0..3 {
                        let window = [(0, 0), (0, 1), (1, 0), (1, 1)]
                            .map(|(dy, dx)| Layout::Hwc.index(full, ch, 2 * py + dy, 2 * px + dx));
                        let winner = window
                            .into_iter()
                            .reduce(|a, c| if h[c] > h[a] { c } else { a })
                            .unwrap();
                        let from = pooled[n * 27 + g.layout.index(g.input, ch, py, px)];
                        for at in window {
                            let want = if at == winner { relu(h[at], from) } else { 0.0 };
                            close(deltas[0].get(n, at), want, &format!("conv 3 ({n}, {at})"));
                        }
                    }
                }
            }
        }
        assert!(matches!(
            t.rule.error_path(0),
            ErrorPath::OutputErrorAtNextInput(_)
        ));
        firsts.push(deltas[0].clone());
        // As a checkpoint would load them: new kernels, which the next
        // errors must use.
        for x in t.rule.feedback_tensors_mut() {
            x.data.iter_mut().for_each(|v| *v = 0.5 - *v * 2.0);
        }
    }
    assert!(firsts[0] != firsts[1], "the loaded kernels were used");
}

/// Two steps of every rule on a convolutional network are bitwise the same
/// on 1, 2 and 3 threads, forward and feedback weights alike (the products
/// are split; patches, pooling and col2im are cut into whole samples).
#[test]
fn conv_steps_of_every_rule_are_bitwise_the_same_on_any_thread_count() {
    use clap::ValueEnum;
    let input = Shape::new(3, 16, 16);
    let net0 = conv_net(
        "conv 16 3x3 pad 1, relu, maxpool 2, conv 32 3x3, relu, avgpool 2, flatten, dense 10",
        input,
        6,
    );
    let rows = 64;
    let opts = RuleOptions {
        max_rows: rows,
        ..Default::default()
    };
    // Every rule at its defaults, and biotorch's DFA.
    let kernel = RuleOptions {
        dfa_projection: DfaProjection::Kernel,
        ..opts.clone()
    };
    let cases = RuleKind::value_variants()
        .iter()
        .map(|&kind| (kind, &opts))
        .chain([(RuleKind::Dfa, &kernel)]);
    for (kind, opts) in cases {
        let run = |threads: usize| {
            let mut net = net0.clone();
            let rule = rules::build(kind, &mut net, opts, &mut ChaCha8Rng::seed_from_u64(3));
            let mut t = Trainer::new(net, rule, sgd(0.1), rows);
            t.set_parallelism(Parallelism::threads(threads).unwrap());
            for k in 0..2 {
                let ds = synthetic(rows, input.len(), 10, 60 + k);
                t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
                t.step(rows).unwrap();
            }
            let feedback: Vec<(String, Vec<f32>)> = t
                .rule
                .feedback_tensors()
                .into_iter()
                .map(|x| (x.name, x.data.to_vec()))
                .collect();
            (t.net, feedback)
        };
        let one = run(1);
        assert_ne!(one.0, net0, "{kind}: it trained");
        for threads in [2, 3] {
            let other = run(threads);
            assert!(
                other.0 == one.0,
                "{kind}: forward weights on {threads} threads"
            );
            assert!(
                other.1 == one.1,
                "{kind}: feedback weights on {threads} threads"
            );
        }
    }
}

/// A convolution's weights are stored as PyTorch's `[out, in, kh, kw]`.
#[test]
fn conv_weights_are_named_in_pytorch_s_layout() {
    let net = conv_net(
        "conv 6 5x5, relu, flatten, dense 10",
        Shape::new(3, 8, 8),
        1,
    );
    let t = net.named_tensors("forward");
    assert_eq!(t[0].name, "forward.0.weight");
    assert_eq!(t[0].shape, [6, 3, 5, 5]);
    assert_eq!(t[1].shape, [6]);
    assert_eq!(t[2].shape, [10, 6 * 4 * 4]);
    assert_eq!(net.layers[0].activation, Some(Activation::Relu));
}

/// The transposed convolution is the convolution's adjoint: with no bias,
/// `<conv(x), y> = <x, convT(y)>`; its error map is the convolution itself,
/// and its weight gradient the convolution's with the roles of input and
/// error exchanged.
#[test]
fn the_transposed_convolution_is_the_adjoint_and_its_gradients_match() {
    for (k, (input, out_channels, kernel, stride, padding, layout)) in [
        (Shape::new(3, 7, 6), 4, (3, 3), 1, 0, Layout::Chw),
        (Shape::new(2, 9, 7), 5, (3, 2), 2, 1, Layout::Hwc),
        (Shape::new(1, 8, 8), 3, (5, 5), 1, 2, Layout::Chw),
    ]
    .into_iter()
    .enumerate()
    {
        let g = Conv2d {
            input,
            layout,
            out_channels,
            kernel,
            stride,
            padding,
        };
        let rows = 2;
        let mut conv = Layer::zeros(Kind::Conv2d(g), None, Vec::new());
        conv.weight = random(out_channels, g.patch_len(), 70 + k as u64);
        let mut convt = Layer::zeros(Kind::ConvTranspose(g), None, Vec::new());
        convt.weight = conv.weight.clone();
        assert_eq!(convt.bias.len(), input.c, "one bias per output channel");
        let x = random(rows, input.len(), 80 + k as u64);
        let y = random(rows, g.output().len(), 90 + k as u64);
        let mut cx = Matrix::zeros(rows, g.output().len());
        conv.forward(&x, &mut cx, &mut conv.workspace(rows, false), rows);
        let mut ty = Matrix::zeros(rows, input.len());
        let mut tws = convt.workspace(rows, false);
        convt.forward(&y, &mut ty, &mut tws, rows);
        let dot = |a: &Matrix, b: &Matrix| -> f64 {
            a.as_slice()
                .iter()
                .zip(b.as_slice())
                .map(|(p, q)| *p as f64 * *q as f64)
                .sum()
        };
        let (lhs, rhs) = (dot(&cx, &y), dot(&x, &ty));
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "case {k}: {lhs} vs {rhs}"
        );
        // Its error map is the convolution (no bias) of the error.
        let none = Matrix::zeros(0, 0);
        let mut back = Matrix::zeros(rows, g.output().len());
        convt.backward_input(Through::Weights, &x, &mut back, &mut tws, None, &none, rows);
        let want = naive_forward(&g, &x, &conv.weight, &vec![0.0; out_channels], rows);
        assert_close(
            back.as_slice(),
            &want,
            &format!("case {k}: convT error map"),
        );
        // Its weight gradient: the convolution's, input and error exchanged.
        let mut tws = convt.workspace(rows, false);
        convt.prepare_grad(&x, &mut tws, rows);
        let (a, b) = convt.grad_operands(&y, &tws, &x, rows);
        let mut dw = Matrix::zeros(out_channels, g.patch_len());
        gemm(&mut dw, false, 1.0, a, b);
        let want = naive_weight_grad(&g, &x, &y, rows);
        assert_close(
            dw.as_slice(),
            &want,
            &format!("case {k}: convT weight gradient"),
        );
    }
}

/// A transposed convolution's weight gradient reuses the patches that its
/// input error made of the same error, and makes its own for any other
/// error, or for the same buffer after a new forward pass.
#[test]
fn the_error_patches_are_reused_only_for_the_error_they_were_made_of() {
    let g = Conv2d {
        input: Shape::new(2, 9, 7),
        layout: Layout::Hwc,
        out_channels: 5,
        kernel: (3, 2),
        stride: 2,
        padding: 1,
    };
    let rows = 2;
    let mut convt = Layer::zeros(Kind::ConvTranspose(g), None, Vec::new());
    convt.weight = random(g.out_channels, g.patch_len(), 71);
    let y = random(rows, g.output().len(), 91);
    let none = Matrix::zeros(0, 0);
    let grad = |tws: &Workspace, delta: &Matrix| {
        let mut dw = Matrix::zeros(g.out_channels, g.patch_len());
        let mut product = dw.clone();
        convt.weight_grad_into(&y, tws, delta, rows, &mut dw, &mut product);
        dw
    };
    let mut back = Matrix::zeros(rows, g.output().len());
    let mut input_error = |tws: &mut Workspace, delta: &Matrix| {
        convt.backward_input(Through::Weights, delta, &mut back, tws, None, &none, rows);
    };
    let mut tws = convt.workspace(rows, false);
    let mut out = Matrix::zeros(rows, g.input.len());
    let mut delta = random(rows, g.input.len(), 81);
    convt.forward(&y, &mut out, &mut tws, rows);
    input_error(&mut tws, &delta);
    // The same error: its patches are reused, and right.
    convt.prepare_grad(&delta, &mut tws, rows);
    let want = naive_weight_grad(&g, &delta, &y, rows);
    assert_close(grad(&tws, &delta).as_slice(), &want, "reused patches");
    // Another error: its own patches.
    let other = random(rows, g.input.len(), 82);
    convt.prepare_grad(&other, &mut tws, rows);
    let want = naive_weight_grad(&g, &other, &y, rows);
    assert_close(grad(&tws, &other).as_slice(), &want, "another error");
    // The first buffer, rewritten after a new forward pass: new patches.
    input_error(&mut tws, &delta);
    convt.forward(&y, &mut out, &mut tws, rows);
    delta.copy_from(&random(rows, g.input.len(), 83));
    convt.prepare_grad(&delta, &mut tws, rows);
    let want = naive_weight_grad(&g, &delta, &y, rows);
    assert_close(grad(&tws, &delta).as_slice(), &want, "the next step");
}

/// BFA on a convolutional network: the feedback network mirrors it
/// (transposed convolutions, upsampling, unflatten) and generates images of
/// the input's shape; without feedback learning it is FA whose kernels are
/// the feedback network's, bit for bit.
#[test]
fn bfa_on_convolutions_mirrors_the_network_and_is_fa_on_its_kernels() {
    use biprop::rules::Bfa;
    let input = Shape::new(1, 12, 12);
    let net0 = conv_net(
        "conv 4 3x3 pad 1, relu, maxpool 2, conv 6 3x3, relu, flatten, dense 10",
        input,
        7,
    );
    let fb = net0.mirror(Output::SigmoidBce, &mut ChaCha8Rng::seed_from_u64(8));
    assert_eq!(fb.inputs(), 10);
    assert_eq!(
        fb.layers.last().unwrap().out_shape(),
        input,
        "it generates images"
    );
    assert!(matches!(fb.layers[1].kind, Kind::ConvTranspose(_)));
    assert_eq!(
        fb.layers[1].pre.len(),
        1,
        "unflatten before the first transposed conv"
    );
    assert_eq!(fb.layers[2].pre.len(), 1, "upsampling before the last");
    for (f, w) in fb.layers.iter().rev().skip(1).zip(&net0.layers[1..]) {
        assert_eq!(f.weight.shape(), w.stand_in_zeros().shape());
    }
    let n = net0.layers.len();
    let fa = Fa {
        b: StandIns::from_fn(&net0, |p, _| fb.layers[n - 1 - p].weight.clone()),
    };
    let frozen = Bfa::from_network(fb.clone(), sgd(0.0), 6);
    let a = step_with(Box::new(frozen), &net0, 6, 3);
    let b = step_with(Box::new(fa), &net0, 6, 3);
    assert_eq!(a.net, b.net);
    // With feedback learning the feedback network learns to draw each
    // class's image (here one fixed image a class), so its error falls.
    let labels: Vec<u8> = (0..6).map(|r| (r % 3) as u8).collect();
    let pixels: Vec<f32> = labels
        .iter()
        .flat_map(|&c| (0..input.len()).map(move |i| ((i * (c as usize + 2)) % 7) as f32 / 7.0))
        .collect();
    let ds = biprop::data::Dataset {
        inputs: Matrix::from_vec(6, input.len(), pixels).unwrap(),
        labels,
        classes: 10,
        image: (1, 12, 12),
    };
    let rule = Box::new(Bfa::from_network(fb.clone(), sgd(0.03), 6));
    let mut t = Trainer::new(net0.clone(), rule, sgd(0.05), 6);
    let mut mse = Vec::new();
    for _ in 0..200 {
        t.load_batch(&ds, &(0..6).collect::<Vec<_>>());
        t.step(6).unwrap();
        mse.push(t.rule.take_feedback_losses()[0].1);
    }
    assert!(
        mse[199] < 0.9 * mse[0],
        "reconstruction error {} -> {}",
        mse[0],
        mse[199]
    );
    assert_ne!(t.rule.feedback_network().unwrap(), &fb);
}

/// A direct rule's projection to a feature map is stored in PyTorch's
/// `C, H, W` order (as `flatten` and `Conv2d` name units), though it is held
/// channels last as the map is: stored row `(c h + y) w + x` carries the
/// output error to unit `(c, y, x)` of the map and to no other.
#[test]
fn a_direct_rule_s_projection_is_stored_in_pytorch_s_unit_order() {
    use biprop::checkpoint::Checkpoint;
    use biprop::state::CheckpointExt;
    use std::collections::{BTreeMap, HashMap};
    let input = Shape::new(2, 5, 5);
    let net0 = conv_net("conv 3 3x3, relu, flatten, dense 4", input, 2);
    let map = net0.layers[0].out_shape();
    assert_eq!((map.c, map.h, map.w), (3, 3, 3));
    let dfa = dfa_of(&net0, 4);
    let held = dfa.d[0].clone();
    let stored = dfa.feedback_tensors()[0].stored().into_owned();
    for c in 0..3 {
        for y in 0..3 {
            for x in 0..3 {
                let r = (c * 3 + y) * 3 + x;
                let h = Layout::Hwc.index(map, c, y, x);
                assert_eq!(
                    &stored[r * 4..(r + 1) * 4],
                    held.row(h),
                    "unit ({c}, {y}, {x})"
                );
            }
        }
    }
    // A state dict whose projection is one-hot at stored row r, loaded as
    // a checkpoint is: the error reaches unit (c, y, x) only.
    let (c, y, x) = (2, 0, 1);
    let r = (c * 3 + y) * 3 + x;
    let rows = 6;
    let mut t = Trainer::new(net0.clone(), Box::new(dfa), sgd(0.2), rows);
    let mut tensors = BTreeMap::new();
    for n in t
        .net
        .named_tensors("forward")
        .into_iter()
        .chain(t.rule.feedback_tensors())
    {
        tensors.insert(n.name.clone(), (n.shape.clone(), n.stored().into_owned()));
    }
    let one_hot: Vec<f32> = (0..27 * 4).map(|i| f32::from(i == r * 4)).collect();
    tensors.insert("feedback.0.weight".into(), (vec![27, 4], one_hot.clone()));
    let meta = HashMap::from([("rule".to_string(), "dfa".to_string())]);
    let ck = Checkpoint::from_tensors(tensors, meta, "test");
    ck.restore(&mut t.net, t.rule.as_mut()).unwrap();
    let ds = synthetic(rows, input.len(), 4, 8);
    t.load_batch(&ds, &(0..rows).collect::<Vec<_>>());
    t.compute_errors(rows);
    let unit = Layout::Hwc.index(map, c, y, x);
    let (e, h, delta) = (&t.deltas()[1], &t.activations()[1], &t.deltas()[0]);
    let mut reached = 0;
    for n in 0..rows {
        for j in 0..27 {
            let want = if j == unit && h.get(n, j) > 0.0 {
                e.get(n, 0)
            } else {
                0.0
            };
            assert_eq!(delta.get(n, j), want, "sample {n}, held unit {j}");
        }
        reached += usize::from(delta.get(n, unit) != 0.0);
    }
    assert!(reached > 0, "no sample's unit ({c}, {y}, {x}) was active");
    // A checkpoint of the format before the row order (every tensor as
    // held) is read as held.
    let mut tensors = BTreeMap::new();
    for n in t.net.named_tensors("forward") {
        tensors.insert(n.name.clone(), (n.shape.clone(), n.data.to_vec()));
    }
    tensors.insert("feedback.0.weight".into(), (vec![27, 4], one_hot.clone()));
    let meta = HashMap::from([("rule".to_string(), "dfa".to_string())]);
    let mut old = Checkpoint::from_tensors(tensors, meta, "test");
    old.metadata
        .insert("format".into(), biprop::checkpoint::FORMAT_2.into());
    old.restore(&mut t.net, t.rule.as_mut()).unwrap();
    assert_eq!(t.rule.feedback_tensors()[0].data, one_hot);
}

/// A run of each direct rule on a convolutional network resumes from its
/// checkpoint exactly: projections and feedback optimizer state, stored in
/// the `C, H, W` order, come back to the rows they were held in.
#[test]
fn direct_rules_on_feature_maps_resume_exactly() {
    use biprop::checkpoint::Checkpoint;
    use biprop::config::RunConfig;
    use biprop::state::{save_trainer, CheckpointExt};
    let input = Shape::new(2, 6, 6);
    let dir = tempfile::tempdir().unwrap();
    for kind in [RuleKind::Dfa, RuleKind::Drtp, RuleKind::Bdfa, RuleKind::Dkp] {
        let net0 = conv_net("conv 3 3x3, tanh, maxpool 2, flatten, dense 4", input, 5);
        let make = || {
            let mut net = net0.clone();
            let opts = RuleOptions {
                feedback_opt: OptimConfig {
                    kind: biprop::optim::OptimizerKind::Adam,
                    lr: 0.01,
                    ..Default::default()
                },
                max_rows: 4,
                ..Default::default()
            };
            let rule = rules::build(kind, &mut net, &opts, &mut ChaCha8Rng::seed_from_u64(9));
            Trainer::new(net, rule, sgd(0.1), 4)
        };
        let steps = |t: &mut Trainer, from: u64| {
            for k in from..from + 2 {
                let ds = synthetic(4, input.len(), 4, 70 + k);
                t.load_batch(&ds, &(0..4).collect::<Vec<_>>());
                t.step(4).unwrap();
            }
        };
        let mut straight = make();
        steps(&mut straight, 0);
        let path = dir.path().join(format!("{kind}.safetensors"));
        let cfg = RunConfig {
            rule: kind,
            ..Default::default()
        };
        save_trainer(&path, &mut straight, &cfg, 1, (2, 6, 6)).unwrap();
        let mut resumed = make();
        let ck = Checkpoint::load(&path).unwrap();
        ck.restore_trainer(&mut resumed).unwrap();
        steps(&mut straight, 2);
        steps(&mut resumed, 2);
        let values = |t: &mut Trainer| -> Vec<Vec<f32>> {
            let mut v: Vec<Vec<f32>> = t
                .rule
                .feedback_tensors()
                .iter()
                .map(|x| x.data.to_vec())
                .collect();
            v.extend(t.optimizer_state_mut().iter().map(|x| x.data.to_vec()));
            v.extend(
                t.net
                    .named_tensors("forward")
                    .iter()
                    .map(|x| x.data.to_vec()),
            );
            v
        };
        assert_eq!(values(&mut straight), values(&mut resumed), "{kind}");
        assert!(
            straight.rule.feedback_tensors()[0].row_order.is_some(),
            "{kind}"
        );
    }
}
