//! Bearer token and HTTP Basic authentication, for receivers that can check nothing else.
//! They prove who sent a request, not what it says: prefer a signature scheme.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::capture::Captured;
use crate::crypto::constant_time_eq;
use crate::error::VerifyError;

pub const HEADER_AUTHORIZATION: &str = "authorization";

/// `Authorization: Bearer <token>`.
pub fn bearer_header(token: &str) -> (String, String) {
    (HEADER_AUTHORIZATION.into(), format!("Bearer {token}"))
}

/// `Authorization: Basic <base64(user:password)>`.
pub fn basic_header(username: &str, password: &str) -> (String, String) {
    (
        HEADER_AUTHORIZATION.into(),
        format!("Basic {}", B64.encode(format!("{username}:{password}"))),
    )
}

fn credentials(req: &Captured, scheme: &str) -> Result<String, VerifyError> {
    let value = req
        .header(HEADER_AUTHORIZATION)
        .ok_or_else(|| VerifyError::MissingHeader(HEADER_AUTHORIZATION.into()))?;
    let (given, rest) = value.split_once(' ').ok_or(VerifyError::BadCredentials)?;
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(VerifyError::BadCredentials);
    }
    Ok(rest.trim().to_owned())
}

/// Accepts when the bearer token equals one of `tokens`.
pub fn verify_bearer(req: &Captured, tokens: &[String]) -> Result<(), VerifyError> {
    let given = credentials(req, "Bearer")?;
    tokens
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
        .then_some(())
        .ok_or(VerifyError::BadCredentials)
}

/// Accepts when `user:password` equals one of `pairs`.
pub fn verify_basic(req: &Captured, pairs: &[(String, String)]) -> Result<(), VerifyError> {
    let given = B64
        .decode(credentials(req, "Basic")?)
        .map_err(|_| VerifyError::BadCredentials)?;
    pairs
        .iter()
        .any(|(u, p)| constant_time_eq(format!("{u}:{p}").as_bytes(), &given))
        .then_some(())
        .ok_or(VerifyError::BadCredentials)
}
