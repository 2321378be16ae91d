//! The decision on the real AdmissionReviews captured from kube-apiserver v1.36, with provenance
//! stamped on their objects as a sync would, against real Git repositories.
#![allow(clippy::unwrap_used)]

mod common;

use common::{copy_provenance, fixture, manifest_of, short, World};
use gitops_shared::provenance::{MANAGED_BY_LABEL, REPO_ANNOTATION, REVISION_ANNOTATION};
use gitops_webhook::decision::{
    decide_with_parent, scale_parent_to_read, AppClaim, Decision, GitFacts, LiveParent, Outcome,
    ScaleParentRef,
};
use gitops_webhook::review::AdmissionRequest;
use serde_json::json;

fn assert_allowed(world: &World, review: &serde_json::Value) -> Outcome {
    let decision = world.decide(review);
    assert!(
        decision.allowed(),
        "expected allowed, got: {}",
        decision.message()
    );
    decision.outcome
}

fn denial(world: &World, review: &serde_json::Value) -> String {
    let decision = world.decide(review);
    assert!(
        !decision.allowed(),
        "expected a denial, got {:?}",
        decision.outcome
    );
    assert_eq!(decision.outcome, Outcome::Denied);
    decision.message().to_owned()
}

// ---- allowed ----

#[test]
fn sync_of_a_commit_on_the_branch_is_allowed() {
    let world = World::new();
    let mut review = fixture("0006-CREATE-Deployment-web.json");
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
    // The Service and ConfigMap of the same apply, too (semantic comparison: targetPort, 0.05 CPU).
    for name in [
        "0005-CREATE-ConfigMap-app-config.json",
        "0012-CREATE-Service-web.json",
    ] {
        let mut review = fixture(name);
        world.sync(&mut review["request"]["object"], &world.repo.c1);
        assert_eq!(
            assert_allowed(&world, &review),
            Outcome::Allowed("matches Git"),
            "{name}"
        );
    }
}

#[test]
fn forward_sync_is_allowed() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
}

#[test]
fn controller_may_update_what_git_does_not_declare() {
    let world = World::new();
    // Git declares the aggregated ClusterRole without its rules, which the aggregation
    // controller fills in.
    let mut review = fixture("0144-UPDATE-ClusterRole-edit.json");
    let manifest = manifest_of(&review["request"]["oldObject"], &["rules"]);
    let commit = world.repo.commit(
        &[("apps/web/clusterrole.yaml", Some(&manifest))],
        "aggregated role",
    );
    world.refresh();
    world.sync(&mut review["request"]["oldObject"], &commit);
    world.sync(&mut review["request"]["object"], &commit);
    assert_eq!(
        review["request"]["userInfo"]["username"],
        "system:serviceaccount:kube-system:clusterrole-aggregation-controller"
    );
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
    // The same change by a person is out-of-band.
    review["request"]["userInfo"] =
        json!({"username": "alice", "groups": ["developers", "system:authenticated"]});
    let message = denial(&world, &review);
    assert!(
        message.starts_with(
            "ClusterRole.rbac.authorization.k8s.io/edit: rules changed from [{\"verbs\""
        ),
        "{message}"
    );
    assert!(message.contains("…"), "long values are cut: {message}");
    assert!(
        message.contains(&format!(
            "by alice, but Git (commit {} on main) does not declare it",
            short(&commit)
        )),
        "{message}"
    );
}

#[test]
fn status_updates_pass() {
    let world = World::new();
    let mut review = fixture("0010-UPDATE-Deployment-web-status.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    assert_eq!(review["request"]["subResource"], "status");
    assert_eq!(assert_allowed(&world, &review), Outcome::Allowed("status"));
}

#[test]
fn prune_after_git_dropped_the_object_is_allowed() {
    let world = World::new();
    world
        .repo
        .commit(&[("apps/web/configmap.yaml", None)], "drop app-config");
    world.refresh();
    let mut review = fixture("0137-DELETE-ConfigMap-app-config.json");
    assert!(review["request"]["object"].is_null());
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("prune: the branch head no longer declares it")
    );
}

#[test]
fn prune_right_after_the_push_is_allowed() {
    // The webhook has not fetched since the push: it looks again before refusing.
    let world = World::new();
    world
        .repo
        .commit(&[("apps/web/configmap.yaml", None)], "drop app-config");
    let mut review = fixture("0137-DELETE-ConfigMap-app-config.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("prune: the branch head no longer declares it")
    );
}

#[test]
fn namespace_controller_may_delete_managed_objects() {
    let world = World::new();
    let mut review = fixture("0331-DELETE-Deployment-web.json");
    assert_eq!(
        review["request"]["name"],
        json!(null),
        "the namespace controller sends no name"
    );
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("exempt identity deletes")
    );
}

#[test]
fn break_glass_passes_with_a_warning() {
    let world = World::new();
    let mut review = fixture("0065-UPDATE-ConfigMap-app-config.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    review["request"]["userInfo"]["groups"] = json!(["gitops:break-glass", "system:authenticated"]);
    let decision = world.decide(&review);
    assert!(decision.allowed());
    assert_eq!(decision.outcome, Outcome::BreakGlass);
    assert_eq!(decision.verdict.warnings.len(), 1);
    let warning = &decision.verdict.warnings[0];
    assert!(
        warning.starts_with(
            "break-glass by admin: ConfigMap/demo/app-config: data.LOG_LEVEL is debug"
        ),
        "{warning}"
    );
    assert!(
        warning.ends_with("The object is OutOfSync until Git catches up."),
        "{warning}"
    );
    let response = gitops_webhook::review::response("u1", &decision.verdict);
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(response["response"]["warnings"][0], json!(warning));
}

#[test]
fn dry_run_of_an_allowed_change_is_allowed() {
    let world = World::new();
    let mut review = fixture("0122-UPDATE-Deployment-web-dryrun.json");
    assert_eq!(review["request"]["dryRun"], true);
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    world.sync(&mut review["request"]["object"], &world.repo.c3);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
}

#[test]
fn unmanaged_objects_pass_except_in_git_only_namespaces() {
    let world = World::new();
    let review = fixture("0152-CREATE-Secret-db-creds.json");
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("unmanaged")
    );
    let strict = World::with_config("gitOnlyNamespaces: [demo]\n");
    let message = denial(&strict, &review);
    assert_eq!(
        message,
        "Secret/demo/db-creds: namespace demo is Git-only and this object carries no kubectl-gitops provenance; add it to Git and run kubectl gitops sync"
    );
}

// ---- denied ----

#[test]
fn kubectl_edit_of_a_declared_field_is_denied() {
    let world = World::new();
    let mut review = fixture("0065-UPDATE-ConfigMap-app-config.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    assert_eq!(
        denial(&world, &review),
        format!(
            "ConfigMap/demo/app-config: data.LOG_LEVEL is debug, commit {} on main says info — change it in Git",
            short(&world.repo.c1)
        )
    );
}

#[test]
fn kubectl_patch_of_a_declared_field_is_denied() {
    let world = World::new();
    let mut review = fixture("0055-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    let message = denial(&world, &review);
    assert!(
        message.starts_with(&format!(
            "Deployment/demo/web: spec.template.spec.containers[name=web].image is nginx:1.26, commit {} on main says nginx:1.25 (and ",
            short(&world.repo.c1)
        )),
        "{message}"
    );
    assert!(
        message.ends_with("more fields) — change it in Git"),
        "{message}"
    );
}

#[test]
fn kubectl_scale_of_declared_replicas_is_denied() {
    let world = World::new();
    let review = fixture("0076-UPDATE-Scale-web-scale.json");
    assert_eq!(review["request"]["kind"]["kind"], "Scale");
    assert!(
        review["request"]["object"]["metadata"]["labels"].is_null(),
        "a Scale carries no labels"
    );
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: spec.replicas is 3, commit {} on main says 1 — change it in Git (kubectl scale is an out-of-band change)",
            short(&world.repo.c3)
        )
    );
    // A Scale of an object no branch declares passes (the widget of the capture).
    let widget = fixture("0151-UPDATE-Scale-blue-scale.json");
    assert_eq!(
        assert_allowed(&world, &widget),
        Outcome::Allowed("scale of an unmanaged object")
    );
}

#[test]
fn rollout_restart_by_a_person_is_denied() {
    let world = World::new();
    let mut review = fixture("0110-UPDATE-Deployment-web.json");
    let manifest = manifest_of(&review["request"]["oldObject"], &[]);
    let commit = world.repo.commit(
        &[("apps/web/deployment.yaml", Some(&manifest))],
        "as deployed",
    );
    world.refresh();
    world.sync(&mut review["request"]["oldObject"], &commit);
    world.sync(&mut review["request"]["object"], &commit);
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: spec.template.metadata.annotations[\"kubectl.kubernetes.io/restartedAt\"] changed from absent to 2026-11-26T14:29:49Z by admin, but Git (commit {} on main) does not declare it; out-of-band changes such as kubectl edit, label, annotate, scale or rollout restart are refused — make the change in Git",
            short(&commit)
        )
    );
}

#[test]
fn kubectl_label_by_a_person_is_denied() {
    let world = World::new();
    let mut review = fixture("0094-UPDATE-Deployment-web.json");
    let manifest = manifest_of(&review["request"]["oldObject"], &[]);
    let commit = world.repo.commit(
        &[("apps/web/deployment.yaml", Some(&manifest))],
        "as deployed",
    );
    world.refresh();
    world.sync(&mut review["request"]["oldObject"], &commit);
    world.sync(&mut review["request"]["object"], &commit);
    let message = denial(&world, &review);
    assert!(
        message.starts_with("Deployment/demo/web: metadata.labels.tier changed from absent to frontend by admin, but Git"),
        "{message}"
    );
}

#[test]
fn made_up_sha_is_denied() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    let made_up = "0123456789abcdef0123456789abcdef01234567";
    review["request"]["object"]["metadata"]["annotations"][REVISION_ANNOTATION] = json!(made_up);
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: commit 0123456 does not exist in {} (fetched again, still unknown); push it to main and sync",
            world.repo.url()
        )
    );
}

#[test]
fn commit_only_on_another_branch_is_denied() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.f1);
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: commit {} of {} is not on branch main (it exists only on another branch or a fork); merge it into main and sync",
            short(&world.repo.f1),
            world.repo.url()
        )
    );
}

#[test]
fn commit_of_an_untrusted_repository_is_denied() {
    let world = World::new();
    let mut review = fixture("0006-CREATE-Deployment-web.json");
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    review["request"]["object"]["metadata"]["annotations"][REPO_ANNOTATION] =
        json!("https://evil.example/fork.git");
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: repository https://evil.example/fork.git is not trusted by this webhook (trusted: {}); sync from a trusted repository",
            world.repo.url()
        )
    );
}

#[test]
fn rollback_to_an_ancestor_is_denied() {
    let world = World::new();
    // deploy-bot takes the Deployment back to v1 values.
    let mut review = fixture("0033-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    assert_eq!(
        denial(&world, &review),
        format!(
            "Deployment/demo/web: commit {} is not a descendant of the object's current commit {}; revisions only move forward on main — to roll back, git revert and sync the new commit",
            short(&world.repo.c1),
            short(&world.repo.c2)
        )
    );
}

#[test]
fn head_mode_accepts_only_the_branch_head() {
    let world = World::with_config("revisionMode: head\n");
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    let message = denial(&world, &review);
    assert!(
        message.contains(&format!(
            "commit {} is not the head of main ({})",
            short(&world.repo.c2),
            short(&world.repo.c3)
        )),
        "{message}"
    );
}

#[test]
fn provenance_copied_onto_another_object_is_denied() {
    let world = World::new();
    let mut review = fixture("0152-CREATE-Secret-db-creds.json");
    let desired = world.render(&world.repo.c1);
    let deployment = desired
        .objects
        .values()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone();
    copy_provenance(&mut review["request"]["object"], &deployment);
    assert_eq!(
        denial(&world, &review),
        format!(
            "Secret/demo/db-creds: app web at commit {} does not declare this object, so its provenance does not apply to it (annotations copied from another object?); add it to Git and sync",
            short(&world.repo.c1)
        )
    );
}

#[test]
fn removing_the_managed_by_label_is_denied() {
    let world = World::new();
    let mut review = fixture("0094-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    review["request"]["object"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(MANAGED_BY_LABEL);
    assert_eq!(
        denial(&world, &review),
        "Deployment/demo/web: removing the label app.kubernetes.io/managed-by=kubectl-gitops is refused; an object leaves GitOps by being removed from Git"
    );
}

#[test]
fn delete_of_an_object_the_head_still_declares_is_denied() {
    let world = World::new();
    let mut review = fixture("0137-DELETE-ConfigMap-app-config.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    assert_eq!(
        denial(&world, &review),
        format!(
            "ConfigMap/demo/app-config: app web still declares it at commit {} (head of main); delete it by removing it from Git and syncing",
            short(&world.repo.c3)
        )
    );
}

#[test]
fn dry_run_of_a_denied_change_is_denied_the_same_way() {
    let world = World::new();
    let mut review = fixture("0121-UPDATE-ConfigMap-app-config-dryrun.json");
    assert_eq!(review["request"]["dryRun"], true);
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    let message = denial(&world, &review);
    assert_eq!(
        message,
        format!(
            "ConfigMap/demo/app-config: metadata.annotations[\"example.io/commit\"] is 0a1b2c3, commit {} on main says abc123 — change it in Git",
            short(&world.repo.c1)
        )
    );
    review["request"]["dryRun"] = json!(false);
    assert_eq!(denial(&world, &review), message);
}

#[test]
fn every_captured_review_gets_an_answer_without_provenance_changes() {
    // None of the captured objects carry our labels: every review of the capture is unmanaged
    // and passes, except creates in a Git-only namespace.
    let world = World::with_config("gitOnlyNamespaces: [default]\n");
    let mut denied = Vec::new();
    for entry in std::fs::read_dir(common::FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let review: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let decision = world.decide(&review);
        if !decision.allowed() {
            denied.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    denied.sort();
    // Denied: creates in the Git-only namespace, and `kubectl scale` of demo/web, which the test
    // repository's head declares with replicas 1 (a Scale carries no labels: the index decides).
    let (creates, others): (Vec<&String>, Vec<&String>) =
        denied.iter().partition(|n| n.contains("-CREATE-"));
    assert_eq!(
        others,
        vec![
            "0076-UPDATE-Scale-web-scale.json",
            "0080-UPDATE-Scale-web-scale.json",
            "0083-UPDATE-Scale-web-scale.json",
            "0085-UPDATE-Scale-web-scale.json",
            "0086-UPDATE-Scale-web-scale.json"
        ]
    );
    assert!(
        creates.contains(&&"0156-CREATE-ConfigMap-app-config.json".to_owned()),
        "{creates:?}"
    );
    for name in creates {
        let review = common::fixture(name);
        assert_eq!(review["request"]["namespace"], "default", "{name}");
    }
}

/// The server answers unmanaged reviews from the managed-by label alone, scanning the objects
/// without building them. On every captured review, as captured (unmanaged) and with the label
/// stamped on its objects, with and without Git-only namespaces, that answer is the full
/// decision's whenever it is given, and it is given for every unmanaged review but scales and
/// creates where Git-only namespaces are configured.
#[test]
fn answers_from_the_label_alone_are_the_full_decisions() {
    use gitops_webhook::decision::decide_from_peeks;
    use gitops_webhook::review::{AdmissionReview, RawObject};
    for config in ["", "gitOnlyNamespaces: [default]\n"] {
        let world = World::with_config(config);
        let (mut shortcuts, mut full) = (0, 0);
        for entry in std::fs::read_dir(common::FIXTURES).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let captured: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut stamped = captured.clone();
            for side in ["object", "oldObject"] {
                if stamped["request"][side].is_object() {
                    stamped["request"][side]["metadata"]["labels"][MANAGED_BY_LABEL] =
                        json!("kubectl-gitops");
                }
            }
            for (review, managed) in [(&captured, false), (&stamped, true)] {
                let body = serde_json::to_vec(review).unwrap();
                let raw: AdmissionReview<RawObject> = serde_json::from_slice(&body).unwrap();
                let raw = raw.request.unwrap();
                let (new, old) = raw.peeks();
                let request = &review["request"];
                let operation = request["operation"].as_str().unwrap();
                let subresource = request["subResource"].as_str().unwrap_or_default();
                let name = path.display();
                match decide_from_peeks(&raw, new, old, &world.config) {
                    Some(shortcut) => {
                        shortcuts += 1;
                        assert_eq!(
                            shortcut,
                            world.decide(review),
                            "{name} (managed: {managed})"
                        );
                        let objects_managed = match operation {
                            "DELETE" => old.maybe_managed,
                            _ => new.maybe_managed || (operation == "UPDATE" && old.maybe_managed),
                        };
                        assert!(
                            !objects_managed || subresource == "status" || operation == "CONNECT",
                            "{name}: a managed object was answered from its label"
                        );
                    }
                    None => {
                        full += 1;
                        // An unmanaged object that mentions kubectl-gitops (or holds a `\u`
                        // escape) elsewhere is read whole too.
                        let expected = subresource == "scale"
                            || managed
                            || new.maybe_managed
                            || old.maybe_managed
                            || (operation == "CREATE" && !config.is_empty());
                        assert!(
                            expected,
                            "{name} (managed: {managed}) was not answered from its label"
                        );
                    }
                }
            }
        }
        assert!(
            shortcuts > 300 && full > 200,
            "{shortcuts} answered from labels, {full} in full"
        );
    }
}

// ---- scale of a folder app's object: the parent read from the API server ----

/// A Deployment `web` with `replicas` (absent when `None`).
fn folder_deployment(replicas: Option<u32>) -> String {
    let replicas = replicas.map_or(String::new(), |r| format!("  replicas: {r}\n"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {{app: web}}\nspec:\n{replicas}  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: nginx:1.27}}]\n"
    )
}

/// A folder app (a path gitops.yaml does not list) declaring Deployment `web`, committed on main
/// and fetched; the Deployment as `kubectl gitops sync --path folder/storefront -n default`
/// stamps it (the parent the API server would hand back), and the head commit.
fn folder_app(world: &World, replicas: Option<u32>) -> (serde_json::Value, String) {
    let head = world.repo.commit(
        &[(
            "folder/storefront/deployment.yaml",
            Some(&folder_deployment(replicas)),
        )],
        "folder app storefront",
    );
    world.refresh();
    let claim = AppClaim {
        app: "folder-storefront".into(),
        path: "folder/storefront".into(),
        folder_namespace: "default".into(),
    };
    let desired = world
        .store
        .render(&world.repo.url(), &head, &claim)
        .unwrap();
    let parent = desired
        .objects
        .values()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone();
    assert_eq!(parent["metadata"]["namespace"], "default");
    assert_eq!(
        parent["metadata"]["labels"][MANAGED_BY_LABEL],
        "kubectl-gitops"
    );
    (parent, head)
}

/// alice's `kubectl scale deployment web --replicas=3` in namespace default, as captured.
fn alice_scales() -> serde_json::Value {
    let review = fixture("0210-UPDATE-Scale-web-scale.json");
    assert_eq!(review["request"]["kind"]["kind"], "Scale");
    assert_eq!(review["request"]["subResource"], "scale");
    assert_eq!(review["request"]["userInfo"]["username"], "alice");
    assert_eq!(review["request"]["namespace"], "default");
    assert_eq!(review["request"]["object"]["spec"]["replicas"], 3);
    assert_eq!(review["request"]["oldObject"]["spec"]["replicas"], 1);
    review
}

fn decide_with(world: &World, review: &serde_json::Value, parent: LiveParent) -> Decision {
    let request: AdmissionRequest = serde_json::from_value(review["request"].clone()).unwrap();
    decide_with_parent(&request, &world.config, world.store.as_ref(), Some(&parent))
}

const HPA: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

#[test]
fn the_server_reads_the_parent_only_when_the_index_does_not_know_it() {
    let world = World::new();
    let request = |review: &serde_json::Value| -> AdmissionRequest {
        serde_json::from_value(review["request"].clone()).unwrap()
    };
    // default/web is in no app of gitops.yaml: read it.
    let target = scale_parent_to_read(&request(&alice_scales()), world.store.as_ref()).unwrap();
    assert_eq!(
        target,
        ScaleParentRef {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            namespace: "default".into(),
            name: "web".into(),
        }
    );
    assert_eq!(target.to_string(), "deployments/web in default");
    // demo/web is app web's: the index answers.
    let indexed = fixture("0076-UPDATE-Scale-web-scale.json");
    assert_eq!(
        scale_parent_to_read(&request(&indexed), world.store.as_ref()),
        None
    );
    // Replicas unchanged: nothing to judge.
    let mut same = alice_scales();
    same["request"]["object"]["spec"]["replicas"] = json!(1);
    assert_eq!(
        scale_parent_to_read(&request(&same), world.store.as_ref()),
        None
    );
    // Not a scale.
    assert_eq!(
        scale_parent_to_read(
            &request(&fixture("0065-UPDATE-ConfigMap-app-config.json")),
            world.store.as_ref()
        ),
        None
    );
}

#[test]
fn kubectl_scale_of_a_folder_app_deployment_is_denied() {
    let world = World::new();
    let (parent, head) = folder_app(&world, Some(1));
    let review = alice_scales();
    // The gap this closes: without the parent, the Scale looks unmanaged.
    assert_eq!(
        world.decide(&review).outcome,
        Outcome::Allowed("scale of an unmanaged object")
    );
    let decision = decide_with(&world, &review, LiveParent::Found(parent));
    assert!(!decision.allowed());
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.message(),
        format!(
            "Deployment/default/web: spec.replicas is 3, commit {} on main says 1 — change it in Git (kubectl scale is an out-of-band change)",
            short(&head)
        )
    );
}

#[test]
fn scale_of_a_folder_app_deployment_to_gits_value_is_allowed() {
    let world = World::new();
    let (parent, _) = folder_app(&world, Some(3));
    let decision = decide_with(&world, &alice_scales(), LiveParent::Found(parent));
    assert!(decision.allowed(), "{}", decision.message());
    assert_eq!(decision.outcome, Outcome::Allowed("scale to Git's value"));
}

#[test]
fn undeclared_replicas_of_a_folder_app_may_change_only_by_controllers() {
    let world = World::new();
    let (parent, head) = folder_app(&world, None);
    let mut review = alice_scales();
    let decision = decide_with(&world, &review, LiveParent::Found(parent.clone()));
    assert_eq!(
        decision.message(),
        format!(
            "Deployment/default/web: spec.replicas changed from 1 to 3 by alice, but Git (commit {} on main) does not declare it; only controllers such as the HorizontalPodAutoscaler may change it — declare replicas in Git instead",
            short(&head)
        )
    );
    assert_eq!(decision.outcome, Outcome::Denied);
    review["request"]["userInfo"] = json!({"username": HPA, "groups": ["system:serviceaccounts"]});
    let decision = decide_with(&world, &review, LiveParent::Found(parent));
    assert_eq!(
        decision.outcome,
        Outcome::Allowed("exempt identity scales an undeclared spec.replicas")
    );
}

#[test]
fn scale_of_an_unmanaged_or_missing_parent_is_allowed() {
    let world = World::new();
    let (mut parent, _) = folder_app(&world, Some(1));
    // The same Deployment without our labels: a hand-made object.
    parent["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(MANAGED_BY_LABEL);
    let review = alice_scales();
    assert_eq!(
        decide_with(&world, &review, LiveParent::Found(parent)).outcome,
        Outcome::Allowed("scale of an unmanaged object")
    );
    assert_eq!(
        decide_with(&world, &review, LiveParent::Absent).outcome,
        Outcome::Allowed("scale of an object that does not exist")
    );
}

#[test]
fn parent_that_cannot_be_read_is_denied_for_a_person_and_allowed_for_an_exempt_identity() {
    let world = World::new();
    let reason = "the API server answered 403 (deployments.apps \"web\" is forbidden: User \"system:serviceaccount:gitops-webhook:gitops-webhook\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"default\")";
    let mut review = alice_scales();
    let decision = decide_with(&world, &review, LiveParent::Unreadable(reason.into()));
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.message(),
        format!("cannot tell whether deployments/web in default is managed: {reason}; try again")
    );
    review["request"]["userInfo"] = json!({"username": HPA, "groups": ["system:serviceaccounts"]});
    let decision = decide_with(&world, &review, LiveParent::Unreadable(reason.into()));
    assert_eq!(
        decision.outcome,
        Outcome::Allowed("exempt identity scales a parent that could not be read")
    );
}

#[test]
fn parent_claiming_an_untrusted_repository_is_handled_like_a_delete() {
    let world = World::new();
    let (mut parent, _) = folder_app(&world, Some(1));
    parent["metadata"]["annotations"][REPO_ANNOTATION] = json!("https://evil.example/fork.git");
    // No trusted branch head declares it: nothing is rendered from the untrusted claim, and the
    // scale passes, as a DELETE of the same object passes as a prune.
    assert_eq!(
        decide_with(&world, &alice_scales(), LiveParent::Found(parent.clone())).outcome,
        Outcome::Allowed("scale of an object no trusted branch head declares")
    );
    let mut delete = fixture("0137-DELETE-ConfigMap-app-config.json");
    delete["request"]["name"] = json!("web");
    delete["request"]["namespace"] = json!("default");
    delete["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    delete["request"]["resource"] =
        json!({"group": "apps", "version": "v1", "resource": "deployments"});
    delete["request"]["userInfo"] = json!({"username": "alice", "groups": ["developers"]});
    delete["request"]["oldObject"] = parent;
    assert_eq!(
        world.decide(&delete).outcome,
        Outcome::Allowed("prune: the branch head no longer declares it")
    );
}
