// No calibration networks: `ecgnas calibrate` generates the real module.

use ecgnas_firmware::model::Model;
use ecgnas_firmware::preprocess::LeadPipeline;

/// One network to time.
pub struct Bench {
    pub pipeline: LeadPipeline<'static>,
    pub leads: usize,
    pub input_scale: f32,
    pub input_zero_point: i32,
    pub model: Model<'static>,
}

pub static BENCHES: [Bench; 0] = [];

pub const MAX_VALUES: usize = 1;
pub const MAX_SAMPLES: usize = 1;
pub const MAX_ARENA: usize = 1;
pub const MAX_LAYERS: usize = 1;
