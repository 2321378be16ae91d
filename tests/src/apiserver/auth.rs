//! Authentication: bearer tokens and the users they stand for.

use super::*;

/// A user the server authenticates.
#[derive(Debug, Clone)]
pub struct User {
    /// Username.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// Bearer tokens and whom they authenticate.
#[derive(Debug, Clone)]
pub struct Users(pub HashMap<String, User>);

impl Default for Users {
    /// `admin-token` → admin (system:masters); `alice-token` → alice (group developers, standing in
    /// for RBAC `edit`); `breakglass-token` → breakglass (group `gitops:break-glass`, with `edit`
    /// like alice); `controller-token` → the kube-system deployment controller;
    /// `reader-token` → the gitops webhook's service account, which reads scale parents.
    fn default() -> Users {
        let mut users = HashMap::new();
        let mut add = |token: &str, name: &str, groups: &[&str]| {
            users.insert(
                token.to_owned(),
                User {
                    name: name.to_owned(),
                    groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                },
            );
        };
        add(
            "admin-token",
            "admin",
            &["system:masters", "system:authenticated"],
        );
        add(
            "alice-token",
            "alice",
            &["developers", "system:authenticated"],
        );
        add(
            "breakglass-token",
            "breakglass",
            &["gitops:break-glass", "system:authenticated"],
        );
        add(
            "controller-token",
            "system:serviceaccount:kube-system:deployment-controller",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
        );
        add(
            "reader-token",
            "system:serviceaccount:gitops-webhook:gitops-webhook",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:gitops-webhook",
                "system:authenticated",
            ],
        );
        Users(users)
    }
}
