//! The preprocessing genes on one window, in f32 (training and the f32 reference).

use crate::space::{fir_lowpass, Band, Baseline, Normalisation, PipelineShape, Preprocessing};

/// A "same" convolution with a symmetric odd filter whose ends repeat the edge sample.
fn filter_same(x: &[f32], taps: &[f64]) -> Vec<f32> {
    let n = x.len() as isize;
    let half = (taps.len() / 2) as isize;
    (0..n)
        .map(|i| {
            let mut acc = 0.0f64;
            for (t, &h) in taps.iter().enumerate() {
                let j = (i + t as isize - half).clamp(0, n - 1);
                acc += h * f64::from(x[j as usize]);
            }
            acc as f32
        })
        .collect()
}

/// Centred moving average of `m` (odd) samples, ends repeating the edge sample, subtracted.
fn remove_baseline(x: &mut [f32], m: usize) {
    let n = x.len() as isize;
    let half = (m / 2) as isize;
    let at = |j: isize| f64::from(x[j.clamp(0, n - 1) as usize]);
    // Running sum over the clamped window: two adds per sample whatever m.
    let mut sum: f64 = (-half..=half).map(at).sum();
    let mut means = Vec::with_capacity(x.len());
    for i in 0..n {
        means.push(sum / m as f64);
        sum += at(i + half + 1) - at(i - half);
    }
    for (v, mean) in x.iter_mut().zip(means) {
        *v = (f64::from(*v) - mean) as f32;
    }
}

fn normalise(x: &mut [f32], normalisation: Normalisation) {
    match normalisation {
        Normalisation::None => {}
        Normalisation::ZScore => {
            let n = x.len().max(1) as f64;
            let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = x
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            let scale = var.sqrt().max(1e-6);
            x.iter_mut()
                .for_each(|v| *v = ((f64::from(*v) - mean) / scale) as f32);
        }
        Normalisation::MaxAbs => {
            let peak = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            x.iter_mut().for_each(|v| *v /= peak);
        }
    }
}

/// One lead's window at the ADC rate (`shape.window_samples` samples) to the network's input
/// (`shape.network_samples` samples).
pub fn preprocess_lead(
    window: &[f32],
    preprocessing: &Preprocessing,
    shape: &PipelineShape,
) -> Vec<f32> {
    let filtered = match preprocessing.band {
        Band::None => window.to_vec(),
        Band::LowPass { cutoff_hz, taps } => {
            filter_same(window, &fir_lowpass(cutoff_hz, taps, shape.input_fs_hz))
        }
    };
    let mut x: Vec<f32> = filtered
        .iter()
        .step_by(shape.decimation.max(1))
        .copied()
        .collect();
    if let (Baseline::MovingAverage { .. }, Some(m)) =
        (&preprocessing.baseline, shape.moving_average_samples)
    {
        remove_baseline(&mut x, m);
    }
    normalise(&mut x, preprocessing.normalisation);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_removes_a_constant_and_keeps_a_fast_wave() {
        let mut x: Vec<f32> = (0..200)
            .map(|i| 3.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        remove_baseline(&mut x, 51);
        // The offset goes; the alternating wave stays (its 51-sample mean is ±1/51).
        for v in &x[30..170] {
            assert!((v.abs() - 1.0).abs() < 0.03, "{v}");
        }
    }

    #[test]
    fn filter_keeps_dc_and_normalisations_scale() {
        let taps = fir_lowpass(40.0, 31, 500.0);
        let y = filter_same(&[2.0; 100], &taps);
        assert!(y.iter().all(|v| (v - 2.0).abs() < 1e-5));
        let mut z = vec![1.0, 3.0, 5.0];
        normalise(&mut z, Normalisation::ZScore);
        let mean: f32 = z.iter().sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6 && (z[2] - 1.2247449).abs() < 1e-5);
        let mut m = vec![-4.0, 2.0];
        normalise(&mut m, Normalisation::MaxAbs);
        assert_eq!(m, vec![-1.0, 0.5]);
    }
}
