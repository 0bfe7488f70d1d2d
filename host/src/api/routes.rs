//! [`Routes`]: an axum router that also keeps the table of what it routes (method and path), so
//! tests and documents can walk every route without a second list that drifts from the router.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use crate::state::AppState;

/// One routed method and path (`{name}` marks a path parameter, as axum writes it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern.
    pub path: String,
}

/// A router under construction with its route table.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteInfo>,
}

macro_rules! method {
    ($name:ident, $routing:ident, $method:expr) => {
        /// Routes this method of `path` to `handler`.
        pub fn $name<H, T>(self, path: &str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add(path, $method, $routing(handler))
        }
    };
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    method!(get, get, Method::GET);
    method!(post, post, Method::POST);
    method!(put, put, Method::PUT);
    method!(patch, patch, Method::PATCH);
    method!(delete, delete, Method::DELETE);

    fn add(mut self, path: &str, method: Method, route: MethodRouter<AppState>) -> Self {
        // axum merges the methods of a path routed twice.
        self.router = self.router.route(path, route);
        self.table.push(RouteInfo { method, path: path.to_owned() });
        self
    }

    /// Adds another set of routes.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// The routes, sorted by path then method.
    pub fn table(&self) -> Vec<RouteInfo> {
        let mut table = self.table.clone();
        table.sort();
        table
    }

    /// The axum router.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
