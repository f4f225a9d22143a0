//! The `customer-register` function: customer organizations register and
//! prove their domain (`/v1/public/customers/...`, the routes
//! `shared::functions::ROUTES` gives to `Function::CustomerRegister`); the
//! behaviour lives in `shared`.

use lambda_http::{Body, Request, Response};
use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::CustomerRegister;

/// Serve one API Gateway (HTTP API v2) request.
pub async fn handler(app: &App, req: Request) -> Response<Body> {
    shared::http::handle(app, Some(FUNCTION), req).await
}
