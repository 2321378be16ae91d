//! What `status` and the web view add to one app's report: the all-apps summary, the tree of live
//! objects the cluster made from Git's, and the watches that say when to look again.

pub mod apps;
pub mod tree;
pub mod watch;
