//! Render 1,000 objects from a commit: plain YAML files, and Tera templates with values.
//!
//! `cargo bench -p gitops-shared --bench render`. The goal (issue 2) is < 100 ms each on the
//! project's 2-core machine. The repository is made with git2 in a temporary folder; every
//! iteration reads the commit's tree from the object database, renders, validates, defaults
//! namespaces, checks duplicates and stamps provenance with digests: the whole `render` path.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use git2::{Oid, Repository, Signature};
use gitops_shared::appfile::{App, Renderer};
use gitops_shared::git::GitRepo;
use gitops_shared::render::{render_app, RenderOptions};
use gitops_shared::scope::BuiltinScope;

const OBJECTS: usize = 1_000;

fn deployment(i: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  labels:\n    app: web-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web-{i}\n  template:\n    metadata:\n      labels:\n        app: web-{i}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n          ports:\n            - containerPort: 8080\n          resources:\n            requests: {{cpu: 100m, memory: 64Mi}}\n"
    )
}

/// Commits `files` (path, content) into a fresh repository at `dir`.
fn commit_files(dir: &Path, files: &[(String, String)]) -> Oid {
    let repo = Repository::init(dir).expect("init");
    let mut index = repo.index().expect("index");
    for (path, content) in files {
        let blob = repo.blob(content.as_bytes()).expect("blob");
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: u32::try_from(content.len()).expect("size"),
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).expect("add");
    }
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let signature = Signature::now("bench", "bench@example.com").expect("signature");
    repo.commit(Some("HEAD"), &signature, &signature, "bench", &tree, &[])
        .expect("commit")
}

fn app(path: &str, renderer: Renderer) -> App {
    App {
        name: "bench".into(),
        path: path.into(),
        namespace: Some("bench".into()),
        renderer,
        values: vec![],
        from_app_file: true,
        cluster_scoped_kinds: vec![],
        take_over_managers: Default::default(),
        jsonnet: Default::default(),
    }
}

fn bench_render(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, String)> = (0..OBJECTS)
        .map(|i| (format!("plain/{:02}/web-{i}.yaml", i % 20), deployment(i)))
        .collect();
    // The same 1,000 Deployments from one looping template plus values.
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("  - web-{i}")).collect();
    files.push((
        "tera/values.yaml".into(),
        format!(
            "image: nginx:1.27\nreplicas: 2\napps:\n{}\n",
            names.join("\n")
        ),
    ));
    files.push((
        "tera/templates/deployments.yaml".into(),
        "{% for name in values.apps %}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ name }}\n  labels:\n    app: {{ name }}\nspec:\n  replicas: {{ values.replicas }}\n  selector:\n    matchLabels:\n      app: {{ name }}\n  template:\n    metadata:\n      labels:\n        app: {{ name }}\n    spec:\n      containers:\n        - name: web\n          image: {{ values.image }}\n          ports:\n            - containerPort: 8080\n          resources:\n            requests: {cpu: 100m, memory: 64Mi}\n{% endfor %}".into(),
    ));
    let commit = commit_files(dir.path(), &files);
    let repo = GitRepo::open_local(dir.path()).expect("open");
    let options = RenderOptions {
        scope: &BuiltinScope,
        folder_namespace: None,
    };

    for (name, path, renderer) in [
        ("render 1000 plain objects", "plain", Renderer::Plain),
        ("render 1000 templated objects", "tera", Renderer::Tera),
    ] {
        let app = app(path, renderer);
        let rendered = render_app(&repo, commit, &app, &options).expect("render");
        assert_eq!(rendered.objects.len(), OBJECTS);
        c.bench_function(name, |b| {
            b.iter(|| render_app(&repo, commit, &app, &options).expect("render"))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_render
}
criterion_main!(benches);
