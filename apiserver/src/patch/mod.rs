//! The three patch formats of `PATCH` requests, applied to objects held as `serde_json::Value`:
//!
//! - `application/strategic-merge-patch+json` — [`strategic_merge_patch`], Kubernetes' own format,
//!   which merges keyed lists by the merge keys of [`merge_keys`] and obeys the `$patch`,
//!   `$retainKeys`, `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives;
//! - `application/merge-patch+json` — [`json_merge_patch`] (RFC 7386);
//! - `application/json-patch+json` — [`json_patch`] (RFC 6902).
//!
//! Every function takes its inputs by reference and returns a new value, so a failed patch
//! leaves nothing half-applied. Every failure is a [`PatchError`] whose message says what in
//! the patch is wrong.

mod eq;
mod error;
mod json_merge;
mod json_patch;
mod list;
pub mod merge_keys;
mod strategic;

pub use error::PatchError;
pub use json_merge::json_merge_patch;
pub use json_patch::json_patch;
pub use strategic::strategic_merge_patch;

/// How deep a patch may nest before it is refused (the JSON parser already stops at 128).
pub(crate) const MAX_DEPTH: usize = 128;
