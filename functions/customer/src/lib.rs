//! The `customer` function: a customer organization's own API
//! (`/v1/customer/...`, the routes `shared::functions::ROUTES` gives to
//! `Function::Customer`); the behaviour lives in `shared`.

use lambda_http::{Body, Request, Response};
use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::Customer;

/// Serve one API Gateway (HTTP API v2) request.
pub async fn handler(app: &App, req: Request) -> Response<Body> {
    shared::http::handle(app, Some(FUNCTION), req).await
}
