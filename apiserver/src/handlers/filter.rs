//! Label and field selectors of a LIST or WATCH, applied to cached objects.

use serde_json::{json, Value};

use api::selector::{field_value, FieldSelector, LabelSelector};
use api::ApiError;

use super::Ctx;
use crate::storage::Obj;

pub struct Filter {
    kind: &'static str,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// From `labelSelector` and `fieldSelector`; for a watch on a named path, `metadata.name` too.
    pub fn from_ctx(ctx: &Ctx) -> Result<Filter, ApiError> {
        let kind = ctx.target.res.kind;
        let labels = match ctx.query.get("labelSelector") {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector {s:?}: {e}")))?,
            None => LabelSelector::everything(),
        };
        let mut raw_fields = ctx.query.get("fieldSelector").unwrap_or("").to_string();
        if let Some(name) = &ctx.target.name {
            if !raw_fields.is_empty() {
                raw_fields.push(',');
            }
            raw_fields.push_str(&format!("metadata.name={}", escape_field_value(name)));
        }
        let fields = FieldSelector::parse(&raw_fields)
            .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector {raw_fields:?}: {e}")))?;
        let empty = json!({});
        for (field, _, _) in fields.requirements() {
            if field_value(kind, &empty, field).is_none() {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
        }
        Ok(Filter { kind, labels, fields })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Obj) -> bool {
        if !self.labels.is_empty() && !self.labels.matches(obj.labels.as_ref()) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        match obj.value() {
            Ok(v) => self.matches_value(&v),
            Err(_) => false,
        }
    }

    pub fn matches_value(&self, v: &Value) -> bool {
        let kind = self.kind;
        self.fields.matches(&|f| field_value(kind, v, f))
    }
}

fn escape_field_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}
