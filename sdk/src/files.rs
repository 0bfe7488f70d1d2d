//! Helpers for the optional `files` export.

/// The MIME type of a file by its extension, for the common office, image and text formats
/// (CRMs rarely say it themselves); `None` for others (the host then sends
/// `application/octet-stream`).
pub fn mime_type_of(extension: &str) -> Option<&'static str> {
    Some(match extension.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn extensions_map_case_insensitively_and_unknown_ones_to_none() {
        assert_eq!(super::mime_type_of("PDF"), Some("application/pdf"));
        assert_eq!(super::mime_type_of("weird"), None);
    }
}
