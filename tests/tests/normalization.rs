//! Input normalisation stored in a model's metadata: applied on the host before the first layer,
//! or folded into layer 0's weights for export and quantisation. Both must compute the same
//! function of the raw input.

use tinyrnn_sim::model_file::Normalization;
use tinyrnn_sim::runtime_model::RuntimeModel;
use tinyrnn_tests::{cases, max_scaled_error};

#[test]
fn folded_normalization_matches_explicit_normalization() {
    for case in cases() {
        let mut model = case.float_model();
        let inputs = model.input_size();
        model.meta.normalization = Some(Normalization {
            mean: (0..inputs).map(|c| 0.3 * c as f32 - 0.5).collect(),
            std: (0..inputs).map(|c| 0.5 + 0.25 * c as f32).collect(),
        });
        let folded = model.fold_normalization();
        assert!(folded.meta.normalization.is_none());
        let input = case.input();
        let explicit = RuntimeModel::from_float(&model)
            .expect("explicit")
            .run_real(input.rows());
        let by_folding = RuntimeModel::from_float(&folded)
            .expect("folded")
            .run_real(input.rows());
        let (err, _, _) = max_scaled_error(&case.name, &by_folding, &explicit);
        assert!(
            err <= 1e-4,
            "{}: folded vs explicit normalisation differ by {err}",
            case.name
        );
    }
}
