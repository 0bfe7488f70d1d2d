//! Keyset paging shared by the list routes: the `limit` a page may ask for, and the key of the
//! next page (the last item's, when the page came back full).

use super::error::{ApiError, ApiResult};

/// A list page's `limit`: 50 when absent, else 1 to 500.
pub fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    bounded_limit("limit", limit, 50, 500)
}

/// A `name`d page size: `default` when absent, else 1 to `max`.
pub fn bounded_limit(name: &str, limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!("{name} must be between 1 and {max}")))
    }
}

/// The key to ask for the next page with: the last item's, when the page is full (a shorter page
/// is the last one).
pub fn next_key<T, K>(page: &[T], limit: i64, key: impl FnOnce(&T) -> K) -> Option<K> {
    if page.len() as i64 == limit { page.last().map(key) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded_and_a_full_page_has_a_next_key() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some(500)).unwrap(), 500);
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(501)).is_err());
        assert_eq!(bounded_limit("items_limit", Some(1000), 200, 1000).unwrap(), 1000);
        assert_eq!(next_key(&[1, 2, 3], 3, |n| *n), Some(3));
        assert_eq!(next_key(&[1, 2], 3, |n| *n), None);
    }
}
