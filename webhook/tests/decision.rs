//! The decision on the real AdmissionReviews captured from kube-apiserver v1.36, with provenance
//! stamped on their objects as a sync would, against real Git repositories.
#![allow(clippy::unwrap_used)]

mod common;

use common::{copy_provenance, fixture, manifest_of, short, World};
use gitops_shared::provenance::{MANAGED_BY_LABEL, REPO_ANNOTATION, REVISION_ANNOTATION};
use gitops_webhook::decision::{
    decide_within, scale_parent_to_read, AppClaim, Decision, Denial, GitFacts, Live, LiveParent,
    Outcome, ScaleParentRef, Window,
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
    let denial = decision.denial.as_ref().expect("a denial");
    assert_eq!(decision.outcome, Outcome::Denied(denial.reason()));
    assert_eq!(decision.message(), denial.to_string());
    decision.message().to_owned()
}

/// The variant of a denial.
fn denied_as(world: &World, review: &serde_json::Value) -> Denial {
    let decision = world.decide(review);
    decision
        .denial
        .unwrap_or_else(|| panic!("expected a denial, got {:?}", decision.outcome))
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
        Outcome::Allowed("exempt identity")
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
        Outcome::Allowed("exempt identity")
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

/// The captured `kubectl label` of the Deployment (0094), with Git holding the Deployment as it
/// was deployed before the label; the review and that commit.
fn captured_label(world: &World) -> (serde_json::Value, String) {
    let review = fixture("0094-UPDATE-Deployment-web.json");
    let manifest = manifest_of(&review["request"]["oldObject"], &[]);
    let commit = world.repo.commit(
        &[("apps/web/deployment.yaml", Some(&manifest))],
        "as deployed",
    );
    world.refresh();
    (review, commit)
}

#[test]
fn kubectl_label_by_a_person_is_denied() {
    let world = World::new();
    let (mut review, commit) = captured_label(&world);
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
            "Deployment/demo/web: commit 0123456 does not exist in {} (fetched just now, still unknown); push it to main and sync",
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
    // Git binds no app to the Secret: provenance copied from another object claims nothing.
    assert_eq!(
        denial(&world, &review),
        "Secret/demo/db-creds: no app of gitops.yaml at the head of main declares it, so Git binds it to no app (a folder app synced with --path cannot be verified, and an object the head no longer declares may not come back); list its folder as an app in gitops.yaml and sync"
    );
}

/// Issue 9, item 1: two folders of the branch declare a Deployment of the same name; the object
/// claims the other one's content. Git binds an object to one app, and a claim naming any other
/// app or path is denied; two apps declaring one object is a conflict, refused for both.
#[test]
fn a_claim_naming_another_app_than_git_binds_is_denied() {
    let world = World::new();
    let app_file = format!(
        "{}  web-dev:\n    path: apps/web-dev\n    namespace: dev\n",
        common::APP_FILE
    );
    let commit = world.repo.commit(
        &[
            ("gitops.yaml", Some(&app_file)),
            (
                "apps/web-dev/deployment.yaml",
                Some(&common::deployment("nginx:1.99", "dev")),
            ),
        ],
        "a dev copy of web in namespace dev",
    );
    world.refresh();
    // The dev app's Deployment applied over demo/web: the claim names web-dev, Git binds web.
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c3);
    world.sync(&mut review["request"]["object"], &world.repo.c3);
    let labels = &mut review["request"]["object"]["metadata"]["labels"];
    labels[gitops_shared::provenance::APP_LABEL] = json!("web-dev");
    let annotations = &mut review["request"]["object"]["metadata"]["annotations"];
    annotations[REVISION_ANNOTATION] = json!(commit);
    annotations[gitops_shared::provenance::PATH_ANNOTATION] = json!("apps/web-dev");
    assert!(matches!(
        denied_as(&world, &review),
        Denial::WrongOwner { owner_app, app, .. } if owner_app == "web" && app == "web-dev"
    ));
    assert_eq!(
        denial(&world, &review),
        "Deployment/demo/web: Git binds it to app web (path apps/web) at the head of main, not to app web-dev (path apps/web-dev); sync app web"
    );
    // A path spelled another way is refused before anything is rendered for it.
    let annotations = &mut review["request"]["object"]["metadata"]["annotations"];
    annotations[gitops_shared::provenance::PATH_ANNOTATION] = json!("./apps/web");
    review["request"]["object"]["metadata"]["labels"][gitops_shared::provenance::APP_LABEL] =
        json!("web");
    assert_eq!(
        denial(&world, &review),
        "Deployment/demo/web: path \"./apps/web\" is not a normalised path of the repository; sync it with kubectl gitops sync"
    );
    // Both apps declare demo/web once dev's namespace is demo too: a conflict.
    let app_file = format!(
        "{}  web-dev:\n    path: apps/web-dev\n    namespace: demo\n",
        common::APP_FILE
    );
    let both = world
        .repo
        .commit(&[("gitops.yaml", Some(&app_file))], "dev into demo");
    world.refresh();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c3);
    world.sync(&mut review["request"]["object"], &world.repo.c3);
    review["request"]["object"]["metadata"]["annotations"][REVISION_ANNOTATION] = json!(both);
    assert_eq!(
        denial(&world, &review),
        "Deployment/demo/web: apps web (path apps/web), web-dev (path apps/web-dev) all declare it at the head of main; Git must bind an object to one app — keep it in one of them"
    );
}

/// Issue 9, item 7: an object the branch head no longer declares may not be created again from
/// an older commit: it would be in no inventory, and no prune would ever remove it.
#[test]
fn creating_an_object_the_head_no_longer_declares_is_denied() {
    let world = World::new();
    let mut review = fixture("0152-CREATE-Secret-db-creds.json");
    let manifest = manifest_of(&review["request"]["object"], &[]);
    let with_secret = world
        .repo
        .commit(&[("apps/web/secret.yaml", Some(&manifest))], "db creds");
    world
        .repo
        .commit(&[("apps/web/secret.yaml", None)], "no more db creds");
    world.refresh();
    world.sync(&mut review["request"]["object"], &with_secret);
    assert!(denial(&world, &review).starts_with(
        "Secret/demo/db-creds: no app of gitops.yaml at the head of main declares it"
    ),);
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
            "ConfigMap/demo/app-config: app web still declares it at commit {} (head of main, fetched just now); delete it by removing it from Git and syncing",
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
    decide_within(
        &request,
        &world.config,
        world.store.as_ref(),
        &Live {
            parent: Some(parent),
            dropped_members: None,
        },
        Window::starting_now(world.config.decision_deadline),
    )
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
    assert_eq!(decision.outcome, Outcome::Denied("ScaleOffGit"));
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
    assert_eq!(
        decision.outcome,
        Outcome::Denied("ScaleOfUndeclaredReplicas")
    );
    review["request"]["userInfo"] = json!({"username": HPA, "groups": ["system:serviceaccounts"]});
    let decision = decide_with(&world, &review, LiveParent::Found(parent));
    assert_eq!(decision.outcome, Outcome::Allowed("exempt identity"));
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
    assert_eq!(decision.outcome, Outcome::Denied("ScaleParentUnreadable"));
    assert_eq!(
        decision.message(),
        format!("cannot tell whether deployments/web in default is managed: {reason}; try again")
    );
    review["request"]["userInfo"] = json!({"username": HPA, "groups": ["system:serviceaccounts"]});
    let decision = decide_with(&world, &review, LiveParent::Unreadable(reason.into()));
    assert_eq!(decision.outcome, Outcome::Allowed("exempt identity"));
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

/// The captured Deployment UPDATE from c1 to c2's content, claiming `commit`.
fn forward_to(world: &World, commit: &str) -> serde_json::Value {
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    review["request"]["object"]["metadata"]["annotations"][REVISION_ANNOTATION] = json!(commit);
    review
}

#[test]
fn a_commit_pushed_right_after_a_miss_waits_for_the_next_fetch_and_passes() {
    let world = World::with_config("missFetchInterval: 1s\ndecisionDeadline: 4s\n");
    // A miss: the one fetch the rate limit allows in this second happens now.
    let made_up = forward_to(&world, "0123456789abcdef0123456789abcdef01234567");
    assert!(denial(&world, &made_up).contains("(fetched just now, still unknown)"));
    // The push lands right after; the sync's review arrives inside the rate limit. It waits for
    // the next fetch the limit allows instead of being refused with a stale answer.
    let pushed = push_c2_again(&world);
    let started = std::time::Instant::now();
    assert_eq!(
        assert_allowed(&world, &forward_to(&world, &pushed)),
        Outcome::Allowed("matches Git")
    );
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(4),
        "waited {waited:?}"
    );
}

#[test]
fn a_fetch_that_cannot_fit_the_deadline_is_not_claimed_to_have_run() {
    let world = World::with_config("missFetchInterval: 3s\ndecisionDeadline: 4s\n");
    let made_up = forward_to(&world, "0123456789abcdef0123456789abcdef01234567");
    assert!(denial(&world, &made_up).contains("(fetched just now, still unknown)"));
    // A second unknown commit with 200 ms left: the next fetch is 3 s away.
    let other = forward_to(&world, "1123456789abcdef0123456789abcdef01234567");
    let request: AdmissionRequest = serde_json::from_value(other["request"].clone()).unwrap();
    let decision = decide_within(
        &request,
        &world.config,
        world.store.as_ref(),
        &Live::default(),
        Window::starting_now(std::time::Duration::from_millis(200)),
    );
    assert!(!decision.allowed());
    assert_eq!(
        decision.message(),
        format!(
            "Deployment/demo/web: commit 1123456 does not exist in {} (not fetched: the webhook fetches at most once every 3000 ms and the next fetch would end after the decision deadline); push it to main and sync",
            world.repo.url()
        )
    );
}

#[test]
fn a_flood_of_made_up_commits_does_not_starve_a_real_one() {
    let world = std::sync::Arc::new(World::with_config(
        "missFetchInterval: 1s\ndecisionDeadline: 4s\n",
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|i| {
            let (world, stop) = (world.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let made_up = format!("{i:x}{n:039x}");
                    assert!(!world.decide(&forward_to(&world, &made_up)).allowed());
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pushed = push_c2_again(&world);
    let started = std::time::Instant::now();
    let decision = world.decide(&forward_to(&world, &pushed));
    let waited = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let floods: u64 = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(decision.allowed(), "{}", decision.message());
    // At most one interval for the rate limit, plus the fetch itself.
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "waited {waited:?} behind {floods} made-up reviews"
    );
    assert!(floods > 4, "the flood sent only {floods} reviews");
}

/// Pushes (commits to the served repository) a new head whose app renders as c2 did.
fn push_c2_again(world: &World) -> String {
    let path = world.repo.path();
    common::git(&path, &["checkout", "-q", &world.repo.c2, "--", "apps/web"]);
    world.repo.commit(&[], "back to c2's app")
}

/// Issue 9, item 9: a denial about a Secret's data never quotes a value, so dry-runs cannot
/// be used to check a guess against Git's secret.
#[test]
fn secret_values_never_appear_in_a_denial() {
    let world = World::new();
    let mut review = fixture("0153-UPDATE-Secret-db-creds.json");
    let manifest = manifest_of(&review["request"]["oldObject"], &[]);
    let commit = world
        .repo
        .commit(&[("apps/web/secret.yaml", Some(&manifest))], "db creds");
    world.refresh();
    world.sync(&mut review["request"]["oldObject"], &commit);
    world.sync(&mut review["request"]["object"], &commit);
    review["request"]["dryRun"] = json!(true);
    let message = denial(&world, &review);
    assert_eq!(
        message,
        format!(
            "Secret/demo/db-creds: data.password is (a Secret value, not shown), commit {} on main says (a Secret value, not shown) — change it in Git",
            short(&commit)
        )
    );
    for value in [
        "c3RpbGwtbm90LXJlYWw=",
        "bm90LWEtcmVhbC1wYXNzd29yZA==",
        "still-not-real",
        "not-a-real-password",
    ] {
        assert!(!message.contains(value), "{message}");
    }
}

/// Issue 9, item 5: a JSON patch appending a second list entry with a key Git declares (the
/// API server only warns) is refused, naming the list entry.
#[test]
fn a_second_entry_with_a_declared_merge_key_is_denied() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    let ports = review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array_mut()
        .expect("ports");
    let mut second = ports[0].clone();
    second["name"] = json!("evil");
    ports.push(second);
    assert!(matches!(
        denied_as(&world, &review),
        Denial::DuplicateKey { entries: 2, .. }
    ));
    let message = denial(&world, &review);
    assert!(
        message.starts_with("Deployment/demo/web: spec.template.spec.containers[name=web].ports[containerPort=80] holds 2 entries with this key"),
        "{message}"
    );
}

/// The reverse of `kubectl label`: a sync removing a label no commit declares (a hand-made
/// change from before the webhook, or break-glass) moves the object towards Git and passes.
#[test]
fn a_sync_removing_a_hand_made_label_is_allowed() {
    let world = World::new();
    let (mut review, commit) = captured_label(&world);
    // The captured label change, played backwards.
    let request = review["request"].as_object_mut().unwrap();
    let (old, new) = (request["oldObject"].clone(), request["object"].clone());
    request.insert("object".into(), old);
    request.insert("oldObject".into(), new);
    world.sync(&mut review["request"]["oldObject"], &commit);
    world.sync(&mut review["request"]["object"], &commit);
    assert_eq!(
        review["request"]["oldObject"]["metadata"]["labels"]["tier"],
        "frontend"
    );
    assert!(review["request"]["object"]["metadata"]["labels"]["tier"].is_null());
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
}

/// Issue 9, item 6: re-applying Git's own values under another field manager changes no value,
/// but the co-owner would pin the fields against Git's next change: refused.
#[test]
fn a_co_owner_of_gits_fields_is_denied() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    review["request"]["oldObject"] = review["request"]["object"].clone();
    review["request"]["object"]["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"manager": "pinner", "operation": "Apply", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}),
        );
    assert_eq!(
        denied_as(&world, &review),
        Denial::CoOwnership {
            key: gitops_shared::object::ObjectKey {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "demo".into(),
                name: "web".into()
            },
            manager: "pinner".into(),
            path: "spec.template.spec.containers[name=web].image".into(),
        }
    );
}

/// A sync's take-over of what people's tools own, before it applies Git's values: only
/// managedFields change, on an object that still holds a hand-made value. It changes no value
/// and gives no one but kubectl-gitops Git's fields: allowed.
#[test]
fn a_take_over_of_field_ownership_by_kubectl_gitops_is_allowed() {
    let world = World::new();
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    // The image was changed by hand (kubectl set image).
    review["request"]["oldObject"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("nginx:9.9");
    review["request"]["oldObject"]["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}),
        );
    let mut taken = review["request"]["oldObject"].clone();
    taken["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["manager"] != "kubectl-set");
    review["request"]["object"] = taken;
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("only field ownership changed")
    );
}

/// Issue 9: forward-only holds across every URL of a trusted repository. An object synced
/// under the repository's URL cannot be moved back to an older commit by a claim that spells
/// the repository another way; a forward sync under the alias passes.
#[test]
fn revisions_move_forward_across_a_repositorys_spellings() {
    let repo = common::Repo::new();
    let url = repo.url();
    let alias = format!("{url}.git");
    let cache = tempfile::tempdir().unwrap();
    let text = format!(
        "repositories:\n  - url: {url}\n    aliases: ['{alias}']\n    branch: main\ncacheDir: {}\nmissFetchInterval: 0s\n",
        cache.path().display()
    );
    let config =
        gitops_webhook::config::Config::parse(&text, std::path::Path::new("c.yaml")).unwrap();
    let store = std::sync::Arc::new(
        gitops_webhook::store::GitStore::open(
            &config,
            std::sync::Arc::new(gitops_webhook::metrics::Metrics::new()),
        )
        .unwrap(),
    );
    assert!(store.refresh().is_empty());
    let world = World {
        repo,
        cache,
        config,
        store,
    };
    // At c2 under the URL; a claim of c1 under the alias is a rollback.
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    review["request"]["oldObject"] = review["request"]["object"].clone();
    world.sync(&mut review["request"]["oldObject"], &world.repo.c2);
    review["request"]["object"]["metadata"]["annotations"][REPO_ANNOTATION] = json!(alias);
    assert!(matches!(
        denied_as(&world, &review),
        Denial::Rollback { .. }
    ));
    // Forward, under the alias: allowed.
    let mut review = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c2);
    review["request"]["object"]["metadata"]["annotations"][REPO_ANNOTATION] = json!(alias);
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );
}

/// Issue 11: a hook made from `generateName`. The API server names it before validating
/// admission (the captured CREATE of a ReplicaSet's Pod shows `metadata.name` beside
/// `generateName`), so no commit holds that name: the hook is matched to Git's declaration by
/// kind, namespace, `generateName` and hook annotation. Only a hook: the same Pod without the
/// annotation, with another hook phase, or with a field Git does not declare is refused.
#[test]
fn a_hook_from_generate_name_is_matched_to_its_declaration() {
    let world = World::new();
    let mut review = fixture("0011-CREATE-Pod-web-74d99b47c9-t7s49.json");
    let object = &mut review["request"]["object"];
    assert_eq!(object["metadata"]["name"], "web-74d99b47c9-t7s49");
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    object["metadata"]["generateName"] = json!("migrate-");
    object["metadata"]["name"] = json!("migrate-t7s49");
    object["metadata"]["annotations"] = json!({"argocd.argoproj.io/hook": "PreSync"});
    // Created by sync's POST: its fields are kubectl-gitops's.
    for entry in object["metadata"]["managedFields"].as_array_mut().unwrap() {
        entry["manager"] = json!("kubectl-gitops");
    }
    let mut declared: serde_json::Value = serde_json::from_str(&manifest_of(object, &[])).unwrap();
    declared["metadata"].as_object_mut().unwrap().remove("name");
    let commit = world.repo.commit(
        &[(
            "apps/web/migrate.yaml",
            Some(&serde_json::to_string_pretty(&declared).unwrap()),
        )],
        "a PreSync hook",
    );
    world.refresh();
    let key = gitops_shared::object::ObjectKey {
        group: String::new(),
        kind: "Pod".into(),
        namespace: "demo".into(),
        name: "migrate-".into(),
    };
    let rendered = world
        .render(&commit)
        .objects
        .get(&key)
        .cloned()
        .expect("the hook renders");
    common::copy_provenance(&mut review["request"]["object"], &rendered);
    review["request"]["name"] = json!("migrate-t7s49");
    review["request"]["userInfo"] =
        json!({"username": "alice", "groups": ["system:authenticated"]});
    assert_eq!(
        assert_allowed(&world, &review),
        Outcome::Allowed("matches Git")
    );

    // Not a hook: a made-up name is never matched.
    let mut plain = review.clone();
    plain["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("argocd.argoproj.io/hook");
    assert!(matches!(denied_as(&world, &plain), Denial::NoOwner { .. }));
    // Another phase is another declaration.
    let mut other_phase = review.clone();
    other_phase["request"]["object"]["metadata"]["annotations"]["argocd.argoproj.io/hook"] =
        json!("PostSync");
    assert!(matches!(
        denied_as(&world, &other_phase),
        Denial::NotDeclared { .. }
    ));
    // Git's hook with another image.
    let mut changed = review.clone();
    changed["request"]["object"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let message = denial(&world, &changed);
    assert!(
        message.contains("spec.containers[name=web].image"),
        "{message}"
    );
}
