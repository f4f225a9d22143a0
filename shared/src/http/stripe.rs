//! (being built)
#![allow(unused)]
use super::envelope::Reply;
use super::{Caller, Ctx};
use crate::error::Error;
use crate::functions::Op;

fn pending(op: &str) -> Error {
    Error::not_found("ROUTE_NOT_FOUND", format!("{op} is not available yet"))
}
pub async fn route(_ctx: &Ctx<'_>, op: Op) -> Result<Reply, Error> {
    Err(pending(&format!("{op:?}")))
}
pub async fn put_secret(_ctx: &Ctx<'_>, _c: &Caller) -> Result<Reply, Error> {
    Err(pending("stripe"))
}
