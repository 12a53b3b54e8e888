//! Finding a mail: the summaries of processed mails (the `received` audit records, written
//! by the process worker: sender, recipients, From, subject, …) joined to deliveries, and
//! the text filters of `GET /api/v1/deliveries` (address, subject, ids, the search box).

use std::collections::HashMap;

use postwire_core::bus;
use postwire_stages::deliver::scan;
use postwire_stages::prepare::summary::MailSummary;
use time::OffsetDateTime;

use crate::deliveries::Delivery;
use crate::problem::ApiResult;
use crate::{Api, Problem, Scope};

/// The summaries of the scope's mails processed since a little before `since` (a mail is
/// processed before its first attempt), by mail id.
pub async fn summaries(
    a: &Api,
    scope: &Scope,
    mail_id: Option<&str>,
    since: OffsetDateTime,
) -> ApiResult<HashMap<String, MailSummary>> {
    let subject = format!(
        "audit.{}.received.{}",
        scope.single().unwrap_or("*"),
        mail_id.unwrap_or("*")
    );
    let from = since - time::Duration::hours(1);
    let records = scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(from))
        .await
        .map_err(Problem::unavailable)?;
    Ok(records
        .into_iter()
        .filter(|s| scope.has(s.subject.split('.').nth(1).unwrap_or_default()))
        .filter_map(|s| {
            let id = s.subject.split('.').nth(3)?.to_string();
            let m = serde_json::from_slice::<MailSummary>(&s.payload).ok()?;
            Some((id, m))
        })
        .collect())
}

/// The text filters of a listing, lower-cased.
#[derive(Default)]
pub struct Search {
    pub delivery_id: Option<String>,
    pub address: Option<String>,
    pub subject: Option<String>,
    pub endpoint: Option<String>,
    pub q: Option<String>,
}

impl Search {
    /// From the query's `delivery_id`, `address`, `subject`, `endpoint` and `q`, in that
    /// order (blank ones are no filter).
    pub fn new(fields: [(&str, &Option<String>); 5]) -> ApiResult<Search> {
        let mut v = Vec::with_capacity(5);
        for (name, value) in fields {
            v.push(match value.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(t) if t.chars().count() > 200 => {
                    return Err(Problem::bad_request(format!(
                        "{name} is longer than 200 characters"
                    )));
                }
                Some(t) => Some(t.to_lowercase()),
            });
        }
        let mut it = v.into_iter();
        let mut next = || it.next().flatten();
        Ok(Search {
            delivery_id: next(),
            address: next(),
            subject: next(),
            endpoint: next(),
            q: next(),
        })
    }

    pub fn matches(&self, d: &Delivery) -> bool {
        let m = d.mail.as_ref();
        self.delivery_id
            .as_deref()
            .is_none_or(|id| d.delivery_id.eq_ignore_ascii_case(id))
            && self.endpoint.as_deref().is_none_or(|e| d.endpoint == e)
            && self
                .address
                .as_deref()
                .is_none_or(|a| m.is_some_and(|m| m.has_address(a)))
            && self
                .subject
                .as_deref()
                .is_none_or(|s| m.is_some_and(|m| m.has_subject(s)))
            && self.q.as_deref().is_none_or(|q| {
                d.delivery_id.eq_ignore_ascii_case(q)
                    || d.mail_id.eq_ignore_ascii_case(q)
                    || m.is_some_and(|m| m.has_address(q) || m.has_subject(q))
            })
    }
}
