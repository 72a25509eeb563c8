//! A small child trained end to end on synthetic data learns the rhythm labels.

use ecgnas::data::tasks::{self, DataSource, LoadOptions, Split, TaskKind};
use ecgnas::metrics::{task_metrics, Truth};
use ecgnas::pipeline::AdcDataset;
use ecgnas::space::{
    Activation, Architecture, Band, Baseline, Block, Candidate, ConvKind, Head, Normalisation,
    OutputActivation, Pool, Preprocessing, Window,
};
use ecgnas::train::{fit, predict, Targets, TrainConfig};

fn block(
    channels: usize,
    kernel: usize,
    stride: usize,
    kind: ConvKind,
    skip: bool,
    pool: Pool,
) -> Block {
    Block {
        kind,
        channels,
        kernel,
        stride,
        dilation: 1,
        activation: Activation::Relu,
        skip,
        pool,
    }
}

#[test]
fn a_small_network_learns_synthetic_rhythms() {
    let dataset = tasks::load(
        TaskKind::Synthetic,
        &DataSource::Synthetic {
            seed: 0,
            n_windows: 1200,
        },
        &LoadOptions::default(),
    )
    .expect("synthetic data");
    let adc = AdcDataset::new(&dataset, 250.0).expect("resampled");
    let candidate = Candidate {
        preprocessing: Preprocessing {
            window: Window::Fixed { length_s: 10.0 },
            band: Band::None,
            decimation: 2,
            baseline: Baseline::MovingAverage { window_s: 0.6 },
            normalisation: Normalisation::ZScore,
        },
        architecture: Architecture {
            blocks: vec![
                block(8, 7, 2, ConvKind::Standard, false, Pool::Max2),
                block(16, 5, 2, ConvKind::DepthwiseSeparable, true, Pool::None),
                block(16, 5, 2, ConvKind::Standard, true, Pool::Avg2),
            ],
            head: Head {
                hidden: Some(16),
                outputs: 6,
                output: OutputActivation::Sigmoid,
            },
        },
    };
    let train = adc
        .prepare(Split::Train, &candidate.preprocessing)
        .expect("train set");
    let val = adc
        .prepare(Split::Validation, &candidate.preprocessing)
        .expect("validation set");
    assert_eq!(train.set.len, 1250); // 10 s at 250 Hz, every second sample
    let Targets::Labels(val_flags) = val.group_targets.clone() else {
        panic!("multi-label")
    };
    let quality = |probs: &[Vec<f32>]| {
        task_metrics(
            TaskKind::Synthetic,
            &val.group_probabilities(probs),
            Truth::Labels(&val_flags),
            None,
        )
        .primary
    };
    let weights = dataset.class_weights();
    let config = TrainConfig {
        epochs: 6,
        ..TrainConfig::default()
    };
    let device = candle_core::Device::Cpu;
    let fitted = fit(
        &candidate.architecture,
        &train.set,
        &val.set,
        &weights,
        &quality,
        &config,
        &device,
    )
    .expect("training");
    // Chance is 0.5; a network that learnt nothing stays near it.
    assert!(
        fitted.best_quality > 0.75,
        "macro AUROC {} ({:?})",
        fitted.best_quality,
        fitted.history
    );
    // The kept weights are the best epoch's: predicting again gives the same quality.
    let probs = predict(&fitted.network, &val.set, 128, &device).expect("predict");
    assert!((quality(&probs) - fitted.best_quality).abs() < 1e-9);
}
