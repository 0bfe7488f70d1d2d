//! OAuth 2.0 pieces the host owns (the connect flow builds on these): the CSRF `state` parameter.

pub mod state;
