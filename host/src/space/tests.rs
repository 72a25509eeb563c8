//! Tests of the search space: round trips, the space file's errors, counting, mutation, shapes.

use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::*;

fn cinc2017() -> TaskShape {
    TaskShape {
        window: WindowKind::Fixed {
            choices_s: vec![5.0, 10.0, 15.0, 20.0],
        },
        multi_label: false,
        n_classes: 4,
        input_fs_hz: 300.0,
        leads: 1,
    }
}

fn synthetic() -> TaskShape {
    TaskShape {
        window: WindowKind::Fixed {
            choices_s: vec![10.0],
        },
        multi_label: true,
        n_classes: 6,
        input_fs_hz: 250.0,
        leads: 1,
    }
}

fn mitdb_aami() -> TaskShape {
    TaskShape {
        window: WindowKind::Beat,
        multi_label: false,
        n_classes: 4,
        input_fs_hz: 360.0,
        leads: 1,
    }
}

fn all_default_spaces() -> Vec<SearchSpace> {
    [cinc2017(), synthetic(), mitdb_aami()]
        .iter()
        .map(SearchSpace::default_for)
        .collect()
}

fn block(kind: ConvKind, channels: usize, kernel: usize, stride: usize) -> Block {
    Block {
        kind,
        channels,
        kernel,
        stride,
        dilation: 1,
        activation: Activation::Relu,
        skip: false,
        pool: Pool::None,
    }
}

/// The candidate of the describe and id tests, written out by hand.
fn handmade() -> Candidate {
    Candidate {
        preprocessing: Preprocessing {
            window: Window::Fixed { length_s: 10.0 },
            band: Band::LowPass {
                cutoff_hz: 40.0,
                taps: 31,
            },
            decimation: 2,
            baseline: Baseline::MovingAverage { window_s: 0.6 },
            normalisation: Normalisation::ZScore,
        },
        architecture: Architecture {
            blocks: vec![
                block(ConvKind::Standard, 16, 7, 2),
                Block {
                    dilation: 2,
                    activation: Activation::Relu6,
                    skip: true,
                    pool: Pool::Max2,
                    ..block(ConvKind::DepthwiseSeparable, 32, 5, 2)
                },
            ],
            head: Head {
                hidden: Some(32),
                outputs: 4,
                output: OutputActivation::Sigmoid,
            },
        },
    }
}

// ---- JSON ----------------------------------------------------------------------------------

#[test]
fn default_spaces_validate_and_round_trip_through_json() {
    for space in all_default_spaces() {
        space.validate().unwrap();
        let text = serde_json::to_string_pretty(&space).unwrap();
        assert_eq!(SearchSpace::from_json(&text).unwrap(), space);
    }
}

#[test]
fn default_space_follows_the_task() {
    let beat = SearchSpace::default_for(&mitdb_aami());
    assert!(matches!(
        beat.preprocessing.window,
        WindowSpace::Beat { .. }
    ));
    assert_eq!(beat.architecture.head.output, OutputActivation::Softmax);
    let synth = SearchSpace::default_for(&synthetic());
    assert_eq!(
        synth.preprocessing.window,
        WindowSpace::Fixed {
            length_s: vec![10.0]
        }
    );
    assert_eq!(synth.architecture.head.output, OutputActivation::Sigmoid);
    assert_eq!(synth.architecture.head.outputs, 6);
    // Cutoffs at or above Nyquist are left out: at 60 Hz only 25 Hz, at 40 Hz none.
    let at = |input_fs_hz| {
        SearchSpace::default_for(&TaskShape {
            input_fs_hz,
            ..synthetic()
        })
        .preprocessing
        .band
    };
    let lp25 = |taps| Band::LowPass {
        cutoff_hz: 25.0,
        taps,
    };
    assert_eq!(at(60.0), vec![Band::None, lp25(31), lp25(63)]);
    assert_eq!(at(40.0), vec![Band::None]);
}

#[test]
fn candidate_json_form_is_snake_case_enums() {
    let text = handmade().canonical_json();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["preprocessing"]["normalisation"], json!("z_score"));
    assert_eq!(
        value["architecture"]["blocks"][1]["kind"],
        json!("depthwise_separable")
    );
    assert_eq!(
        value["preprocessing"]["baseline"],
        json!({"moving_average": {"window_s": 0.6}})
    );
}

#[test]
fn candidate_json_rejects_unknown_fields_inside_variants() {
    let mut value = serde_json::to_value(handmade()).unwrap();
    value["preprocessing"]["band"]["low_pass"]["order"] = json!(2);
    let err = serde_json::from_value::<Candidate>(value).unwrap_err();
    assert!(err.to_string().contains("unknown field `order`"), "{err}");
}

proptest! {
    #[test]
    fn sampled_candidates_round_trip_through_json(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        for space in all_default_spaces() {
            let candidate = space.sample(&mut rng).unwrap();
            let text = serde_json::to_string(&candidate).unwrap();
            let back: Candidate = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &candidate);
            prop_assert_eq!(back.id(), candidate.id());
        }
    }
}

// ---- a user's space file ---------------------------------------------------------------------

/// Writes the default cinc2017 space, edited by `edit`, to a file and loads it.
fn load_edited(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, SpaceError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("space.json");
    let mut value = serde_json::to_value(SearchSpace::default_for(&cinc2017())).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let err = SearchSpace::load(&path).unwrap_err();
    (dir, err)
}

/// The problem inside a file error, after checking the message names the file.
fn problem(dir: &tempfile::TempDir, err: SpaceError) -> SpaceError {
    let path = dir.path().join("space.json");
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
    match err {
        SpaceError::InFile { path: p, problem } => {
            assert_eq!(p, path);
            *problem
        }
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn a_valid_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("space.json");
    let space = SearchSpace::default_for(&mitdb_aami());
    std::fs::write(&path, serde_json::to_string_pretty(&space).unwrap()).unwrap();
    assert_eq!(SearchSpace::load(&path).unwrap(), space);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = SearchSpace::load(Path::new("/nonexistent/space.json")).unwrap_err();
    assert!(matches!(err, SpaceError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("/nonexistent/space.json: "));
}

#[test]
fn unknown_field_is_reported_by_name() {
    let (dir, err) = load_edited(|v| v["architecture"]["block"]["groups"] = json!([1]));
    let problem = problem(&dir, err);
    assert!(matches!(problem, SpaceError::Parse { .. }), "{problem:?}");
    assert!(
        problem.to_string().contains("unknown field `groups`"),
        "{problem}"
    );
}

#[test]
fn unknown_choice_name_is_a_parse_error() {
    let (dir, err) = load_edited(|v| v["architecture"]["block"]["activation"] = json!(["gelu"]));
    let problem = problem(&dir, err);
    assert!(
        problem.to_string().contains("unknown variant `gelu`"),
        "{problem}"
    );
}

#[test]
fn empty_choice_list_names_the_gene() {
    let (dir, err) = load_edited(|v| v["architecture"]["block"]["stride"] = json!([]));
    match problem(&dir, err) {
        SpaceError::EmptyChoices { gene } => assert_eq!(gene, "architecture.block.stride"),
        other => panic!("{other:?}"),
    }
    let (dir, err) = load_edited(|v| v["preprocessing"]["normalisation"] = json!([]));
    match problem(&dir, err) {
        SpaceError::EmptyChoices { gene } => assert_eq!(gene, "preprocessing.normalisation"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn even_kernel_is_rejected() {
    let (dir, err) = load_edited(|v| v["architecture"]["block"]["kernel"] = json!([3, 4, 5]));
    assert!(matches!(
        problem(&dir, err),
        SpaceError::EvenKernel { kernel: 4 }
    ));
}

#[test]
fn kernel_out_of_range_is_rejected() {
    for bad in [1, 17] {
        let (dir, err) = load_edited(|v| v["architecture"]["block"]["kernel"] = json!([3, bad]));
        match problem(&dir, err) {
            SpaceError::KernelOutOfRange { kernel } => assert_eq!(kernel, bad),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn channels_out_of_range_are_rejected() {
    for bad in [2, 65] {
        let (dir, err) = load_edited(|v| v["architecture"]["block"]["channels"] = json!([8, bad]));
        match problem(&dir, err) {
            SpaceError::ChannelsOutOfRange { channels } => assert_eq!(channels, bad),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn unsupported_version_is_reported_before_the_fields() {
    // A version-2 file with a field this build does not know: the version is what is reported.
    let (dir, err) = load_edited(|v| {
        v["version"] = json!(2);
        v["search_budget"] = json!(3);
    });
    assert!(matches!(
        problem(&dir, err),
        SpaceError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    ));
}

#[test]
fn other_bad_choices_are_rejected() {
    type Edit = fn(&mut Value);
    let cases: Vec<(Edit, &str)> = vec![
        (
            |v| v["architecture"]["block"]["stride"] = json!([1, 3]),
            "architecture.block.stride",
        ),
        (
            |v| v["architecture"]["block"]["dilation"] = json!([8]),
            "architecture.block.dilation",
        ),
        (
            |v| v["preprocessing"]["decimation"] = json!([1, 5]),
            "preprocessing.decimation",
        ),
        (
            |v| v["architecture"]["n_blocks"] = json!([0, 1]),
            "architecture.n_blocks",
        ),
        (
            |v| v["architecture"]["n_blocks"] = json!([9]),
            "architecture.n_blocks",
        ),
        (
            |v| v["preprocessing"]["band"] = json!([{"low_pass": {"cutoff_hz": 25.0, "taps": 30}}]),
            "preprocessing.band.low_pass.taps",
        ),
        (
            |v| v["preprocessing"]["window"]["fixed"]["length_s"] = json!([0.0]),
            "preprocessing.window.fixed.length_s",
        ),
        (
            |v| v["architecture"]["head"]["hidden"] = json!([null, 0]),
            "architecture.head.hidden",
        ),
        (
            |v| v["architecture"]["head"]["outputs"] = json!(1),
            "architecture.head.outputs",
        ),
    ];
    for (edit, expected) in cases {
        let (dir, err) = load_edited(edit);
        match problem(&dir, err) {
            SpaceError::NotAllowed { gene, .. } => assert_eq!(gene, expected),
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn duplicate_choice_is_rejected() {
    let (dir, err) = load_edited(|v| v["architecture"]["block"]["channels"] = json!([8, 16, 8]));
    match problem(&dir, err) {
        SpaceError::DuplicateChoice { gene, value } => {
            assert_eq!(gene, "architecture.block.channels");
            assert_eq!(value, "8");
        }
        other => panic!("{other:?}"),
    }
}

// ---- decisions, encode, decode -----------------------------------------------------------------

#[test]
fn decision_sequence_has_the_documented_layout() {
    let space = SearchSpace::default_for(&cinc2017());
    let decisions = space.decisions();
    // window, band, decimation, baseline, normalisation, n_blocks, 8 x 8 block genes, head.
    assert_eq!(decisions.len(), 5 + 1 + 8 * 8 + 1);
    assert_eq!(decisions[0].kind, DecisionKind::WindowLength);
    assert_eq!(decisions[0].n_choices, 4);
    assert_eq!(decisions[5].kind, DecisionKind::NumBlocks);
    assert_eq!(decisions[5].n_choices, 8);
    assert_eq!(decisions[6].kind, DecisionKind::BlockKind { block: 0 });
    assert_eq!(
        decisions[6 + 8 + 1].kind,
        DecisionKind::Channels { block: 1 }
    );
    assert_eq!(decisions[6 + 8 + 1].n_choices, 8);
    assert_eq!(decisions.last().unwrap().kind, DecisionKind::HeadHidden);
    assert!(decisions[6 + 8 * 2].is_active(3));
    assert!(!decisions[6 + 8 * 3].is_active(3));
    let beat = SearchSpace::default_for(&mitdb_aami()).decisions();
    assert_eq!(beat.len(), 7 + 1 + 8 * 8 + 1);
    assert_eq!(beat[2].kind, DecisionKind::RrIntervals);
    // Clues: a dense index per gene.
    let genes: HashSet<usize> = decisions
        .iter()
        .chain(&beat)
        .map(|d| d.kind.gene().index())
        .collect();
    assert_eq!(genes.len(), Gene::COUNT);
    assert!(genes.iter().all(|&g| g < Gene::COUNT));
}

#[test]
fn decode_rejects_bad_sequences() {
    let space = SearchSpace::default_for(&cinc2017());
    let n = space.decisions().len();
    assert!(matches!(
        space.decode(&vec![0; n - 1]),
        Err(SpaceError::WrongDecisionCount { expected, got }) if expected == n && got == n - 1
    ));
    let mut choices = vec![0; n];
    choices[3] = 3; // baseline has 3 choices
    assert!(matches!(
        space.decode(&choices),
        Err(SpaceError::ChoiceOutOfRange {
            kind: DecisionKind::Baseline,
            choice: 3,
            n_choices: 3
        })
    ));
    // Ignored decisions are range-checked too.
    let mut choices = vec![0; n];
    choices[n - 2] = 5; // pool of block 7, ignored with one block
    assert!(space.decode(&choices).is_err());
}

#[test]
fn decode_ignores_blocks_beyond_the_count() {
    let space = SearchSpace::default_for(&cinc2017());
    let n = space.decisions().len();
    let mut choices = vec![0; n];
    choices[5] = 1; // two blocks
    choices[6 + 8 * 2 + 1] = 7; // channels of block 2: ignored
    let candidate = space.decode(&choices).unwrap();
    assert_eq!(candidate.architecture.blocks.len(), 2);
    assert!(candidate
        .architecture
        .blocks
        .iter()
        .all(|b| b.channels == 4));
    let mut canonical = choices.clone();
    canonical[6 + 8 * 2 + 1] = 0;
    assert_eq!(space.encode(&candidate).unwrap(), canonical);
}

#[test]
fn encode_rejects_candidates_outside_the_space() {
    let space = SearchSpace::default_for(&cinc2017());
    let mut c = handmade();
    c.architecture.head.output = OutputActivation::Softmax;
    assert!(space.encode(&c).is_some());
    c.architecture.blocks[0].channels = 20;
    assert_eq!(space.encode(&c), None);
    let mut c = handmade();
    c.architecture.head.output = OutputActivation::Softmax;
    c.preprocessing.window = Window::Beat {
        pre_s: 0.25,
        post_s: 0.45,
        rr_intervals: false,
    };
    assert_eq!(space.encode(&c), None);
    let mut c = handmade();
    c.architecture.head.output = OutputActivation::Softmax;
    c.architecture.head.outputs = 5;
    assert_eq!(space.encode(&c), None);
}

proptest! {
    #[test]
    fn sampled_candidates_encode_and_decode_to_themselves(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        for space in all_default_spaces() {
            let candidate = space.sample(&mut rng).unwrap();
            let choices = space.encode(&candidate).unwrap();
            prop_assert_eq!(choices.len(), space.decisions().len());
            prop_assert_eq!(space.decode(&choices).unwrap(), candidate);
        }
    }

    #[test]
    fn any_choice_sequence_decodes_and_encodes_back(raw in prop::collection::vec(any::<usize>(), 71)) {
        let space = SearchSpace::default_for(&cinc2017());
        let decisions = space.decisions();
        let choices: Vec<usize> = decisions.iter().zip(&raw).map(|(d, r)| r % d.n_choices).collect();
        let candidate = space.decode(&choices).unwrap();
        let n_blocks = candidate.architecture.blocks.len();
        let expected: Vec<usize> = decisions
            .iter()
            .zip(&choices)
            .map(|(d, &c)| if d.is_active(n_blocks) { c } else { 0 })
            .collect();
        prop_assert_eq!(space.encode(&candidate).unwrap(), expected);
    }
}

// ---- size ------------------------------------------------------------------------------------

fn tiny_space() -> SearchSpace {
    let mut space = SearchSpace::default_for(&TaskShape {
        window: WindowKind::Fixed {
            choices_s: vec![5.0, 10.0],
        },
        ..synthetic()
    });
    let pre = &mut space.preprocessing;
    pre.band = vec![Band::None];
    pre.decimation = vec![1, 4];
    pre.baseline = vec![Baseline::None];
    pre.normalisation = vec![Normalisation::ZScore];
    let arch = &mut space.architecture;
    arch.n_blocks = vec![1, 3];
    arch.block = BlockSpace {
        kind: vec![ConvKind::Standard, ConvKind::DepthwiseSeparable],
        channels: vec![8],
        kernel: vec![3, 5],
        stride: vec![1],
        dilation: vec![1],
        activation: vec![Activation::Relu],
        skip: vec![false],
        pool: vec![Pool::None],
    };
    arch.head.hidden = vec![None, Some(16), Some(32)];
    space.validate().unwrap();
    space
}

/// Every candidate of a space, by enumerating every choice sequence (ignored ones included).
fn brute_force_distinct(space: &SearchSpace) -> usize {
    let decisions = space.decisions();
    let mut choices = vec![0; decisions.len()];
    let mut seen = HashSet::new();
    loop {
        seen.insert(space.decode(&choices).unwrap().canonical_json());
        // Mixed-radix increment.
        let mut i = 0;
        loop {
            if i == choices.len() {
                return seen.len();
            }
            choices[i] += 1;
            if choices[i] < decisions[i].n_choices {
                break;
            }
            choices[i] = 0;
            i += 1;
        }
    }
}

#[test]
fn size_equals_a_brute_force_count() {
    let space = tiny_space();
    let distinct = brute_force_distinct(&space);
    // By hand: 2 windows x 2 decimations x 3 heads x (4 one-block + 64 three-block).
    assert_eq!(distinct, 2 * 2 * 3 * (4 + 64));
    assert_eq!(space.size_exact(), Some(distinct as u128));
    assert_eq!(space.size(), distinct as f64);
}

#[test]
fn default_space_size() {
    let space = SearchSpace::default_for(&cinc2017());
    // Per block: 2 kinds x 8 channels x 7 kernels x 3 strides x 3 dilations x 2 activations
    // x 2 skips x 3 pools; preprocessing: 4 windows x 5 bands x 3 decimations x 3 baselines
    // x 3 normalisations; head: 4.
    let block: u128 = 2 * 8 * 7 * 3 * 3 * 2 * 2 * 3;
    assert_eq!(block, 12_096);
    let expected = 4 * 5 * 3 * 3 * 3 * 4 * (1..=8).map(|n| block.pow(n)).sum::<u128>();
    assert_eq!(space.size_exact(), Some(expected));
    let relative = (space.size() - expected as f64).abs() / expected as f64;
    assert!(relative < 1e-12, "{relative}");
    // Beyond u128 the exact count is None but the float stays finite.
    let mut huge = space.clone();
    huge.architecture.block.channels = (4..=64).collect();
    huge.validate().unwrap();
    assert_eq!(huge.size_exact(), None);
    assert!(huge.size().is_finite() && huge.size() > 1e39);
}

// ---- sample and mutate -----------------------------------------------------------------------

#[test]
fn sampling_covers_every_choice() {
    let space = tiny_space();
    let mut rng = StdRng::seed_from_u64(7);
    let ids: HashSet<String> = (0..50_000)
        .map(|_| space.sample(&mut rng).unwrap().id())
        .collect();
    // 816 candidates; the rarest (three blocks) has probability 1/2 x 1/12 x 1/64 = 1/1536,
    // so 50,000 draws miss one with probability about 768 x exp(-32.5), i.e. never.
    assert_eq!(ids.len(), 816);
}

#[test]
fn sample_reports_an_empty_list() {
    let mut space = tiny_space();
    space.architecture.block.pool.clear();
    let err = space.sample(&mut StdRng::seed_from_u64(0)).unwrap_err();
    assert!(matches!(
        err,
        SpaceError::EmptyChoices {
            gene: "architecture.block.pool"
        }
    ));
}

/// Decisions that differ between two candidates, counting only those active in both.
fn changed_genes(space: &SearchSpace, a: &Candidate, b: &Candidate) -> Vec<DecisionKind> {
    let (ea, eb) = (space.encode(a).unwrap(), space.encode(b).unwrap());
    let (na, nb) = (a.architecture.blocks.len(), b.architecture.blocks.len());
    space
        .decisions()
        .iter()
        .zip(ea.iter().zip(&eb))
        .filter(|(d, (x, y))| d.is_active(na) && d.is_active(nb) && x != y)
        .map(|(d, _)| d.kind)
        .collect()
}

proptest! {
    #[test]
    fn mutate_changes_exactly_one_gene_and_stays_in_the_space(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        for space in all_default_spaces() {
            let parent = space.sample(&mut rng).unwrap();
            let child = space.mutate(&parent, &mut rng).unwrap();
            prop_assert!(space.encode(&child).is_some());
            prop_assert_ne!(&child, &parent);
            let changed = changed_genes(&space, &parent, &child);
            prop_assert_eq!(changed.len(), 1, "{:?}", changed);
            // Blocks kept across a change of the block count are untouched.
            let kept = parent.architecture.blocks.len().min(child.architecture.blocks.len());
            if changed[0] == DecisionKind::NumBlocks {
                prop_assert_eq!(&parent.architecture.blocks[..kept], &child.architecture.blocks[..kept]);
            }
        }
    }
}

#[test]
fn mutate_reaches_the_block_count() {
    let space = tiny_space();
    let mut rng = StdRng::seed_from_u64(3);
    let parent = space.sample(&mut rng).unwrap();
    let counts: HashSet<usize> = (0..500)
        .map(|_| {
            space
                .mutate(&parent, &mut rng)
                .unwrap()
                .architecture
                .blocks
                .len()
        })
        .collect();
    assert_eq!(counts, HashSet::from([1, 3]));
}

#[test]
fn mutate_refuses_a_candidate_outside_the_space() {
    let space = tiny_space();
    let err = space
        .mutate(&handmade(), &mut StdRng::seed_from_u64(0))
        .unwrap_err();
    assert!(matches!(err, SpaceError::NotInSpace { ref id } if *id == handmade().id()));
}

#[test]
fn mutate_in_a_one_point_space_returns_the_parent() {
    let mut space = tiny_space();
    space.preprocessing.window = WindowSpace::Fixed {
        length_s: vec![10.0],
    };
    space.preprocessing.decimation = vec![1];
    space.architecture.n_blocks = vec![1];
    space.architecture.block.kind = vec![ConvKind::Standard];
    space.architecture.block.kernel = vec![3];
    space.architecture.head.hidden = vec![None];
    assert_eq!(space.size_exact(), Some(1));
    let mut rng = StdRng::seed_from_u64(0);
    let parent = space.sample(&mut rng).unwrap();
    assert_eq!(space.mutate(&parent, &mut rng).unwrap(), parent);
}

// ---- ids and describe ------------------------------------------------------------------------

#[test]
fn id_is_the_sha256_of_the_canonical_json() {
    let c = handmade();
    let expected_json = concat!(
        r#"{"preprocessing":{"window":{"fixed":{"length_s":10.0}},"#,
        r#""band":{"low_pass":{"cutoff_hz":40.0,"taps":31}},"decimation":2,"#,
        r#""baseline":{"moving_average":{"window_s":0.6}},"normalisation":"z_score"},"#,
        r#""architecture":{"blocks":[{"kind":"standard","channels":16,"kernel":7,"stride":2,"#,
        r#""dilation":1,"activation":"relu","skip":false,"pool":"none"},"#,
        r#"{"kind":"depthwise_separable","channels":32,"kernel":5,"stride":2,"dilation":2,"#,
        r#""activation":"relu6","skip":true,"pool":"max2"}],"#,
        r#""head":{"hidden":32,"outputs":4,"output":"sigmoid"}}}"#
    );
    assert_eq!(c.canonical_json(), expected_json);
    // `printf '%s' "$json" | sha256sum` = 0046729738022a42...
    assert_eq!(c.id(), "004672973802");
}

#[test]
fn ids_differ_for_different_candidates() {
    let space = SearchSpace::default_for(&mitdb_aami());
    let mut rng = StdRng::seed_from_u64(11);
    let candidates: Vec<Candidate> = (0..300).map(|_| space.sample(&mut rng).unwrap()).collect();
    let jsons: HashSet<String> = candidates.iter().map(Candidate::canonical_json).collect();
    let ids: HashSet<String> = candidates.iter().map(Candidate::id).collect();
    assert_eq!(ids.len(), jsons.len());
    assert!(jsons.len() > 290);
    let mut other = handmade();
    other.architecture.blocks[0].kernel = 9;
    assert_ne!(other.id(), handmade().id());
    assert!(ids.iter().all(|id| id.len() == 12));
}

#[test]
fn describe_is_one_line_in_the_documented_notation() {
    assert_eq!(
        handmade().describe(),
        "win10s lp40t31 dec2 ma0.6 z | std16k7s2 dw32k5s2d2r6+skip+max | gap d32 sigmoid"
    );
    let mut beat = handmade();
    beat.preprocessing = Preprocessing {
        window: Window::Beat {
            pre_s: 0.25,
            post_s: 0.45,
            rr_intervals: true,
        },
        band: Band::None,
        decimation: 1,
        baseline: Baseline::None,
        normalisation: Normalisation::MaxAbs,
    };
    beat.architecture.blocks.truncate(1);
    beat.architecture.blocks[0].pool = Pool::Avg2;
    beat.architecture.head.hidden = None;
    beat.architecture.head.output = OutputActivation::Softmax;
    assert_eq!(
        beat.describe(),
        "beat0.25/0.45s+rr dec1 maxabs | std16k7s2+avg | gap softmax"
    );
}

// ---- shapes ----------------------------------------------------------------------------------

#[test]
fn shapes_match_hand_computed_lengths() {
    let c = handmade();
    let layers = c.layer_shapes(2500, 1).unwrap();
    let summary: Vec<(Option<usize>, usize, usize, usize, usize)> = layers
        .iter()
        .map(|l| {
            (
                l.block,
                l.in_channels,
                l.out_channels,
                l.in_length,
                l.out_length,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            // std k7 s2: pad 3, floor((2500 + 6 - 6 - 1) / 2) + 1 = 1250
            (Some(0), 1, 16, 2500, 1250),
            // dw k5 s2 d2: pad 4, floor((1250 + 8 - 8 - 1) / 2) + 1 = 625
            (Some(1), 16, 16, 1250, 625),
            (Some(1), 16, 32, 625, 625),  // pointwise
            (Some(1), 16, 32, 1250, 625), // projection: 16 -> 32 channels, stride 2
            (Some(1), 32, 32, 625, 625),  // add
            (Some(1), 32, 32, 625, 312),  // max pool: floor(625 / 2)
            (None, 32, 32, 312, 1),       // global average pool
            (None, 32, 32, 1, 1),         // hidden dense
            (None, 32, 4, 1, 1),          // output
        ]
    );
    assert_eq!(
        layers[1].op,
        LayerOp::Conv {
            role: ConvRole::Depthwise,
            kernel: 5,
            stride: 2,
            dilation: 2,
            padding: 4,
            groups: 16,
            activation: Some(Activation::Relu6),
        }
    );
    // With a shortcut the activation moves to the sum.
    assert!(matches!(
        layers[2].op,
        LayerOp::Conv {
            role: ConvRole::Pointwise,
            activation: None,
            ..
        }
    ));
    assert_eq!(
        layers[4].op,
        LayerOp::Add {
            activation: Activation::Relu6
        }
    );
    assert_eq!(
        layers[8].op,
        LayerOp::Output {
            activation: OutputActivation::Sigmoid
        }
    );
}

#[test]
fn identity_shortcut_needs_no_projection() {
    let mut c = handmade();
    c.architecture.blocks = vec![
        block(ConvKind::Standard, 8, 3, 1),
        Block {
            skip: true,
            ..block(ConvKind::Standard, 8, 15, 1)
        },
    ];
    let layers = c.layer_shapes(100, 2).unwrap();
    let roles: Vec<&LayerOp> = layers
        .iter()
        .filter(|l| l.block == Some(1))
        .map(|l| &l.op)
        .collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(matches!(roles[1], LayerOp::Add { .. }));
    assert_eq!(layers[1].in_length, 100);
    assert_eq!(layers[1].out_length, 100);
}

#[test]
fn rr_side_inputs_widen_the_head() {
    let mut c = handmade();
    c.preprocessing.window = Window::Beat {
        pre_s: 0.25,
        post_s: 0.45,
        rr_intervals: true,
    };
    let layers = c.layer_shapes(252, 1).unwrap();
    let concat = layers
        .iter()
        .find(|l| matches!(l.op, LayerOp::ConcatRr { features: 3 }))
        .unwrap();
    assert_eq!((concat.in_channels, concat.out_channels), (32, 35));
    let hidden = layers
        .iter()
        .find(|l| matches!(l.op, LayerOp::Dense { .. }))
        .unwrap();
    assert_eq!(hidden.in_channels, 35);
}

#[test]
fn wide_dilated_kernel_on_a_short_input() {
    // k15 d4 s4 on 10 samples: pad 28, floor((10 + 56 - 56 - 1) / 4) + 1 = 3.
    assert_eq!(same_padding(15, 4), 28);
    assert_eq!(conv_out_len(10, 15, 4, 4, 28), 3);
    // Without padding the dilated kernel (57 samples) does not fit.
    assert_eq!(conv_out_len(10, 15, 4, 4, 0), 0);
    assert_eq!(conv_out_len(57, 15, 1, 4, 0), 1);
    assert_eq!(pool_out_len(7), 3);
}

#[test]
fn vanishing_length_is_reported() {
    let mut c = handmade();
    // 13 samples: block 0 (k7 s2) -> 7, block 1 (k5 s2 d2) -> 4, pool -> 2, block 2 -> 2,
    // pool -> 1. 12 samples: 6, 3, pool -> 1, block 2 -> 1, pool -> 0.
    c.architecture.blocks.push(Block {
        pool: Pool::Avg2,
        ..block(ConvKind::Standard, 8, 3, 1)
    });
    assert!(c.is_valid(13, 1));
    let gap = c
        .layer_shapes(13, 1)
        .unwrap()
        .into_iter()
        .find(|l| l.op == LayerOp::GlobalAvgPool)
        .unwrap();
    assert_eq!((gap.in_channels, gap.in_length), (8, 1));
    assert!(!c.is_valid(12, 1));
    match c.layer_shapes(12, 1).unwrap_err() {
        SpaceError::LengthVanishes {
            block,
            layer,
            in_length,
        } => assert_eq!((block, layer, in_length), (2, "the pooling", 1)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.layer_shapes(0, 1),
        Err(SpaceError::EmptyInput { .. })
    ));
}

#[test]
fn even_kernel_candidate_is_invalid() {
    let mut c = handmade();
    c.architecture.blocks[0].kernel = 4;
    assert!(matches!(
        c.layer_shapes(100, 1),
        Err(SpaceError::EvenKernel { kernel: 4 })
    ));
}

proptest! {
    /// The closed formula against counting the positions where the dilated kernel fits.
    #[test]
    fn conv_length_formula_counts_kernel_positions(
        len in 1usize..200, k in 1usize..16, s in 1usize..5, d in 1usize..5, p in 0usize..40,
    ) {
        let span = d * (k - 1) + 1;
        let positions = (0..).take_while(|i| i * s + span <= len + 2 * p).count();
        prop_assert_eq!(conv_out_len(len, k, s, d, p), positions);
    }

    /// Every sampled candidate is either valid on its task or fails with a vanishing length.
    #[test]
    fn sampled_candidates_have_consistent_shapes(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        for task in [cinc2017(), synthetic(), mitdb_aami()] {
            let space = SearchSpace::default_for(&task);
            let c = space.sample(&mut rng).unwrap();
            match c.shapes_for(&task) {
                Ok(layers) => {
                    for pair in layers.windows(2) {
                        // Each layer reads what the one before wrote, except a projection,
                        // which reads the block input.
                        let reads_block_input = matches!(
                            pair[1].op,
                            LayerOp::Conv { role: ConvRole::Projection, .. }
                        );
                        if !reads_block_input && !matches!(pair[0].op, LayerOp::Conv { role: ConvRole::Projection, .. }) {
                            prop_assert_eq!(pair[0].out_channels, pair[1].in_channels);
                            prop_assert_eq!(pair[0].out_length, pair[1].in_length);
                        }
                    }
                    let last = layers.last().unwrap();
                    prop_assert_eq!(last.out_channels, task.n_classes);
                }
                Err(SpaceError::LengthVanishes { .. }) => {}
                Err(other) => prop_assert!(false, "{}", other),
            }
        }
    }
}

// ---- preprocessing ---------------------------------------------------------------------------

#[test]
fn pipeline_shape_of_a_default_beat() {
    let pre = Preprocessing {
        window: Window::Beat {
            pre_s: 0.25,
            post_s: 0.45,
            rr_intervals: true,
        },
        band: Band::LowPass {
            cutoff_hz: 40.0,
            taps: 31,
        },
        decimation: 2,
        baseline: Baseline::MovingAverage { window_s: 0.6 },
        normalisation: Normalisation::ZScore,
    };
    let shape = pre.pipeline_shape(360.0).unwrap();
    // Benchmark definitions 1.2: 90 + 162 samples at 360 Hz.
    assert_eq!(shape.window_samples, 252);
    assert_eq!(shape.fiducial_index, Some(90));
    assert_eq!(shape.network_samples, 126);
    assert_eq!(shape.network_fs_hz, 180.0);
    // 0.6 s at 180 Hz = 108 samples, made odd.
    assert_eq!(shape.moving_average_samples, Some(109));
    assert_eq!(shape.fir_taps, Some(31));
    assert_eq!(shape.side_inputs, 3);
    // ceil(2500 / 4) = 625 for the synthetic 10 s window.
    let window = Preprocessing {
        window: Window::Fixed { length_s: 10.0 },
        decimation: 4,
        ..pre.clone()
    };
    assert_eq!(window.pipeline_shape(250.0).unwrap().network_samples, 625);
    assert_eq!(window.pipeline_shape(250.0).unwrap().side_inputs, 0);
    assert!(matches!(
        pre.pipeline_shape(60.0),
        Err(SpaceError::CutoffAboveNyquist { nyquist_hz, .. }) if nyquist_hz == 30.0
    ));
    assert!(matches!(
        pre.pipeline_shape(0.0),
        Err(SpaceError::BadSampleRate { .. })
    ));
}

#[test]
fn fir_lowpass_is_symmetric_with_unit_dc_gain() {
    let h = fir_lowpass(40.0, 31, 360.0);
    assert_eq!(h.len(), 31);
    assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    for i in 0..31 {
        assert!((h[i] - h[30 - i]).abs() < 1e-15);
    }
    // Gain at Nyquist: sum of (-1)^n h[n], far below the passband.
    let nyquist: f64 = h
        .iter()
        .enumerate()
        .map(|(n, v)| if n % 2 == 0 { *v } else { -v })
        .sum();
    assert!(nyquist.abs() < 0.01, "{nyquist}");
    // Three taps by hand: Hamming window (0.08, 1, 0.08); fc/fs = 1/4, so the side sinc is
    // sin(pi/2)/(pi/2) = 2/pi; before normalisation (0.08 * 0.5 * 2/pi, 0.5, same).
    let side = 0.08 * 0.5 * 2.0 / std::f64::consts::PI;
    let total = 0.5 + 2.0 * side;
    let h3 = fir_lowpass(90.0, 3, 360.0);
    assert!((h3[0] - side / total).abs() < 1e-15);
    assert!((h3[1] - 0.5 / total).abs() < 1e-15);
}
