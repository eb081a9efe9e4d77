//! Whether an object that a create met (409) is weir's, for the same deployment: one left by
//! an attempt whose answer was lost, or by a lost state, is adopted; anyone else's is refused.
//!
//! weir marks what it makes with the labels `managed-by = weir` and `weir-deployment =
//! <deployment>` (the lowering writes them). Types without labels are told apart otherwise, by
//! their own modules.

use serde_json::Value;

/// Where most APIs keep an object's labels.
pub(crate) const LABELS: &str = "/labels";
/// Where Cloud SQL keeps an instance's labels.
pub(crate) const SQL_USER_LABELS: &str = "/settings/userLabels";

/// The label `key` of `object`, among its labels at the JSON pointer `labels`.
fn label<'a>(object: &'a Value, labels: &str, key: &str) -> Option<&'a str> {
    object.pointer(labels)?.get(key)?.as_str()
}

/// Whether `object`'s labels (at `labels`) say that weir manages it.
pub(crate) fn managed_by_weir(object: &Value, labels: &str) -> bool {
    label(object, labels, "managed-by") == Some("weir")
}

/// Whether the live object is weir's for the deployment that `desired` (the attributes weir
/// plans, which name their deployment) belongs to: managed by weir, with the same
/// `weir-deployment` label.
pub(crate) fn made_for_deployment(live: &Value, desired: &Value, labels: &str) -> bool {
    let deployment = label(desired, labels, "weir-deployment");
    managed_by_weir(live, labels)
        && deployment.is_some()
        && label(live, labels, "weir-deployment") == deployment
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_weirs_labels_for_the_same_deployment_make_an_object_weirs() {
        let desired = json!({"labels": {"managed-by": "weir", "weir-deployment": "prod"}});
        assert!(made_for_deployment(&desired, &desired, LABELS));
        for live in [
            json!({"labels": {"managed-by": "weir", "weir-deployment": "dev"}}),
            json!({"labels": {"managed-by": "someone", "weir-deployment": "prod"}}),
            json!({"labels": {"weir-deployment": "prod"}}),
            json!({}),
        ] {
            assert!(!made_for_deployment(&live, &desired, LABELS), "{live}");
        }
        let unnamed = json!({"labels": {"managed-by": "weir"}});
        assert!(!made_for_deployment(&unnamed, &unnamed, LABELS));
        let sql =
            json!({"settings": {"userLabels": {"managed-by": "weir", "weir-deployment": "prod"}}});
        assert!(made_for_deployment(&sql, &sql, SQL_USER_LABELS));
        assert!(!made_for_deployment(&sql, &sql, LABELS));
    }
}
