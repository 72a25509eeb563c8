//! The half-moons example (`host/examples/half_moons.rs`) at a reduced budget: the data has the
//! published shape, the decision sequence decodes to the MLPs of the space, and a short search
//! finds an MLP that separates the moons on the held-out test points.

#[allow(dead_code)]
#[path = "../examples/half_moons.rs"]
mod half_moons;

use half_moons::{
    bayes_accuracy, decisions, decode, make_moons, mean_test, Config, MAX_LAYERS, RETRAININGS,
    UNITS,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn moons_have_two_balanced_interleaved_classes() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let points = make_moons(1000, 0.0, &mut rng).expect("moons");
    assert_eq!(points.y.len(), 1000);
    assert_eq!(points.y.iter().filter(|&&y| y == 1).count(), 500);
    // Without noise every point lies on its unit arc: the upper one centred at (0, 0), the
    // lower one at (1, 0.5).
    for (xy, &label) in points.x.chunks(2).zip(&points.y) {
        let (cx, cy) = if label == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
        let r = ((xy[0] as f64 - cx).powi(2) + (xy[1] as f64 - cy).powi(2)).sqrt();
        assert!(
            (r - 1.0).abs() < 1e-5,
            "point {xy:?} of class {label} off its arc"
        );
        // The upper moon is the top half of its circle, the lower one the bottom half.
        let on_its_half = if label == 0 {
            xy[1] as f64 >= cy - 1e-6
        } else {
            xy[1] as f64 <= cy + 1e-6
        };
        assert!(on_its_half, "point {xy:?} on the wrong half of its circle");
    }
    // Noise-free points are all classified right by the Bayes rule; noisy ones mostly.
    assert_eq!(bayes_accuracy(&points, 1000, 0.2), 1.0);
    let noisy = make_moons(1000, 0.2, &mut rng).expect("moons");
    let bayes = bayes_accuracy(&noisy, 1000, 0.2);
    assert!((0.9..1.0).contains(&bayes), "Bayes accuracy {bayes}");
}

#[test]
fn every_choice_sequence_decodes_to_an_mlp_of_the_space() {
    let d = decisions();
    assert_eq!(d.len(), 1 + 2 * MAX_LAYERS);
    let mut choices = vec![0; d.len()];
    choices[0] = 2; // three hidden layers
    choices[1] = UNITS.len() - 1;
    choices[4] = 1; // tanh in the second layer
    choices[9] = 3; // a fifth layer's units: inactive with three layers
    let (mlp, active) = decode(&choices).expect("decode");
    assert_eq!(mlp.layers.len(), 3);
    assert_eq!(mlp.layers[0].0, 32);
    assert_eq!(mlp.to_string(), "2-32r-1t-1r-2");
    assert_eq!(active.iter().filter(|&&a| a).count(), 1 + 2 * 3);
    assert!(decode(&choices[1..]).is_err());
    let mut out_of_range = choices.clone();
    out_of_range[2] = 2;
    assert!(decode(&out_of_range).is_err());
}

#[test]
fn a_short_search_separates_the_moons() {
    let config = Config {
        trials: 40,
        epochs: 25,
        ..Config::default()
    };
    let report = half_moons::run(&config).expect("search");
    assert_eq!(report.trials.len(), 40);
    assert!(report.distinct >= 2 && report.distinct <= 40);
    // A linear boundary gets about 85% of noisy moons; the best MLP found must bend around them.
    assert!(
        report.best.outcome.validation >= 0.93,
        "best validation accuracy {}",
        report.best.outcome.validation
    );
    // The chosen network's fresh trainings come within 5 points of the best any classifier
    // can do on these test points.
    assert_eq!(report.retrained.len(), RETRAININGS);
    let test = mean_test(&report.retrained);
    assert!(
        test >= report.bayes_test - 0.05,
        "test accuracy {test}, Bayes-optimal {}",
        report.bayes_test
    );
}
