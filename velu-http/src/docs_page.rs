//! The `/docs` page: poem-openapi's Swagger UI page, whose script and style are inline (it
//! loads nothing from elsewhere, so it works offline and under a strict CSP), showing the
//! finished spec (`api::finished_spec`: tags in order, plain summaries, `servers`) instead
//! of poem-openapi's raw document, under Velu's own title.

/// The page for `spec` (the finished spec's JSON).
pub fn html(spec: &str) -> String {
    let svc = crate::api::service();
    let page = svc.swagger_ui_html();
    let embedded = format!("let spec = {};", svc.spec());
    assert!(
        page.contains(&embedded),
        "poem-openapi's Swagger UI page no longer embeds its spec as `let spec = ...;`"
    );
    // `</` inside a string would end the script element early; `<\/` is the same JSON.
    let ours = format!("let spec = {};", spec.trim_end().replace("</", "<\\/"));
    page.replacen(&embedded, &ours, 1).replacen(
        "<title>Swagger UI</title>",
        "<title>Velu API</title>",
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_the_finished_spec_once() {
        let spec = crate::api::finished_spec();
        let page = html(&spec);
        assert_eq!(page.matches("let spec = ").count(), 1);
        assert!(page.contains(&format!("let spec = {};", spec.replace("</", "<\\/"))));
        assert!(!page.contains(&crate::api::service().spec()));
        assert!(page.contains("<title>Velu API</title>"));
    }
}
