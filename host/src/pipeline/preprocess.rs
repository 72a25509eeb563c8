//! The preprocessing genes on one window: the firmware's own f32 pipeline
//! ([`ecgnas_firmware::preprocess`]), so training, the int8 reference and the device see the
//! same network inputs bit for bit.

use ecgnas_firmware::preprocess::{LeadPipeline, Normalisation as DeviceNormalisation};

use crate::space::{fir_lowpass, Band, Normalisation, PipelineShape, Preprocessing};

/// A candidate's preprocessing at one ADC rate, with its filter taps computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadPlan {
    /// The low-pass taps as the device stores them (f32), empty without band limiting.
    pub taps: Vec<f32>,
    /// Samples of the raw window.
    pub window: usize,
    /// The decimation factor.
    pub decimation: usize,
    /// The baseline moving average's length (0 for none).
    pub moving_average: usize,
    /// The normalisation.
    pub normalisation: DeviceNormalisation,
}

impl LeadPlan {
    /// The plan of `preprocessing` with the sample counts of `shape`.
    pub fn new(preprocessing: &Preprocessing, shape: &PipelineShape) -> LeadPlan {
        let taps = match preprocessing.band {
            Band::None => Vec::new(),
            Band::LowPass { cutoff_hz, taps } => fir_lowpass(cutoff_hz, taps, shape.input_fs_hz)
                .into_iter()
                .map(|h| h as f32)
                .collect(),
        };
        LeadPlan {
            taps,
            window: shape.window_samples,
            decimation: shape.decimation.max(1),
            moving_average: shape.moving_average_samples.unwrap_or(0),
            normalisation: match preprocessing.normalisation {
                Normalisation::None => DeviceNormalisation::None,
                Normalisation::ZScore => DeviceNormalisation::ZScore,
                Normalisation::MaxAbs => DeviceNormalisation::MaxAbs,
            },
        }
    }

    /// The firmware's view of the plan.
    pub fn pipeline(&self) -> LeadPipeline<'_> {
        LeadPipeline {
            window: self.window,
            fir_taps: &self.taps,
            decimation: self.decimation,
            moving_average: self.moving_average,
            normalisation: self.normalisation,
        }
    }

    /// Samples the network sees per lead.
    pub fn output_len(&self) -> usize {
        self.pipeline().output_len()
    }

    /// One lead's raw window (`window` samples at the ADC rate, mV) to the network's input.
    pub fn run(
        &self,
        raw: &[f32],
    ) -> Result<Vec<f32>, ecgnas_firmware::preprocess::PreprocessError> {
        let pipeline = self.pipeline();
        let mut out = vec![0f32; pipeline.output_len()];
        let mut scratch = vec![0f32; pipeline.output_len()];
        pipeline.run(raw, &mut out, &mut scratch)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Baseline, Window};

    #[test]
    fn plan_follows_the_genes_and_keeps_dc() {
        let preprocessing = Preprocessing {
            decimation: 2,
            window: Window::Fixed { length_s: 1.0 },
            baseline: Baseline::None,
            band: Band::LowPass {
                cutoff_hz: 40.0,
                taps: 31,
            },
            normalisation: Normalisation::None,
        };
        let shape = preprocessing.pipeline_shape(500.0).unwrap();
        let plan = LeadPlan::new(&preprocessing, &shape);
        assert_eq!(
            (plan.taps.len(), plan.window, plan.output_len()),
            (31, 500, 250)
        );
        // Unit DC gain: a constant window stays constant.
        let out = plan.run(&[2.0; 500]).unwrap();
        assert!(out.iter().all(|v| (v - 2.0).abs() < 1e-5));
        assert!(plan.run(&[2.0; 499]).is_err());
    }
}
