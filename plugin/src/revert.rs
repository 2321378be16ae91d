//! Undoing hand-made changes: before `sync` applies an object whose fields people's tools own
//! (`kubectl edit`, `patch`, `set`, `label`, `scale`, a client-side `kubectl apply`, …), it hands
//! those managers' `managedFields` entries to its own apply entry, as Flux's
//! `PatchReplaceFieldsManagers` does. The apply that follows then owns them alone: it puts Git's
//! values back without a conflict and removes the fields Git does not declare. Entries of
//! managers not taken over (controllers, an HPA) and status writes are left as they are.

use gitops_shared::provenance::FIELD_MANAGER;
use gitops_shared::takeover::{union_fields, TakeOverManagers};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::Value;

/// Why the cluster's `managedFields` could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    /// The live object's `metadata.managedFields` is not a list of entries.
    #[error("cannot read metadata.managedFields")]
    ManagedFields(#[source] serde_json::Error),
}

/// The `managedFields` of `live` with every entry of a taken-over manager merged into
/// `kubectl-gitops`'s apply entry (created from the first such entry when there is none);
/// `None` when no entry is taken over, so nothing needs writing.
pub fn taken_over(
    live: &Value,
    take_over: &TakeOverManagers,
) -> Result<Option<Vec<ManagedFieldsEntry>>, RevertError> {
    let entries: Vec<ManagedFieldsEntry> = match live.pointer("/metadata/managedFields") {
        Some(list) => serde_json::from_value(list.clone()).map_err(RevertError::ManagedFields)?,
        None => Vec::new(),
    };
    let is_ours = |e: &ManagedFieldsEntry| {
        e.manager.as_deref() == Some(FIELD_MANAGER)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    };
    let mut ours: Option<ManagedFieldsEntry> = entries.iter().find(|e| is_ours(e)).cloned();
    let mut kept = Vec::with_capacity(entries.len());
    let mut edited = false;
    for entry in entries.into_iter().filter(|e| !is_ours(e)) {
        let manager = entry.manager.as_deref().unwrap_or_default();
        let status = entry.subresource.as_deref() == Some("status");
        if status || !take_over.covers(manager) {
            kept.push(entry);
            continue;
        }
        edited = true;
        match &mut ours {
            Some(ours) => {
                let fields = ours
                    .fields_v1
                    .get_or_insert_with(|| FieldsV1(Value::Object(Default::default())));
                if let Some(theirs) = &entry.fields_v1 {
                    union_fields(&mut fields.0, &theirs.0);
                }
            }
            None => {
                // The first one becomes ours; a `scale` entry's fields are the parent's already.
                ours = Some(ManagedFieldsEntry {
                    manager: Some(FIELD_MANAGER.to_owned()),
                    operation: Some("Apply".to_owned()),
                    subresource: None,
                    ..entry
                });
            }
        }
    }
    if !edited {
        return Ok(None);
    }
    kept.extend(ours);
    Ok(Some(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "kubectl-gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}}, "time": "2026-01-01T00:00:00Z"},
            {"manager": "kubectl-patch", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:extra": {}}}},
            {"manager": "kubectl", "operation": "Update", "subresource": "scale", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "horizontal-pod-autoscaler", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:minReadySeconds": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "subresource": "status", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:x": {}}}}
        ]}})
    }

    #[test]
    fn people_s_entries_merge_into_ours_and_the_rest_stays() {
        let entries = taken_over(&live(), &TakeOverManagers::default())
            .expect("readable")
            .expect("something taken over");
        let managers: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e.manager.as_deref().unwrap_or_default(),
                    e.subresource.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            managers,
            [
                ("horizontal-pod-autoscaler", ""),
                ("kubectl-edit", "status"),
                ("kubectl-gitops", "")
            ]
        );
        let ours = entries.last().expect("ours");
        assert_eq!(ours.operation.as_deref(), Some("Apply"));
        assert_eq!(
            ours.fields_v1.as_ref().map(|f| f.0.clone()),
            Some(json!({"f:data": {"f:a": {}, "f:extra": {}}, "f:spec": {"f:replicas": {}}}))
        );
    }

    #[test]
    fn the_first_taken_entry_becomes_ours_and_nothing_to_take_is_none() {
        let mut live = live();
        live["metadata"]["managedFields"]
            .as_array_mut()
            .expect("list")
            .remove(0);
        let entries = taken_over(&live, &TakeOverManagers::default())
            .expect("readable")
            .expect("taken");
        let ours = entries.last().expect("ours");
        assert_eq!(ours.manager.as_deref(), Some(FIELD_MANAGER));
        assert_eq!(ours.subresource, None);
        let none = TakeOverManagers::parse(&[]).expect("valid");
        assert_eq!(taken_over(&live, &none).expect("readable"), None);
    }
}
