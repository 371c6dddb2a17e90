//! The committed SDL under `schema/` is the schema the code serves.

use bff_core::graphql::check_sdl;

fn committed(file: &str) -> String {
    let path = format!("{}/schema/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn web_schema_matches_the_committed_sdl() {
    let result = check_sdl(
        &bff_web::graphql::sdl(),
        &committed("web.graphql"),
        "cargo run -p bff-web -- --print-schema > schema/web.graphql",
    );
    if let Err(message) = result {
        panic!("{message}");
    }
}

#[test]
fn mobile_schema_matches_the_committed_sdl() {
    let result = check_sdl(
        &bff_mobile::graphql::sdl(),
        &committed("mobile.graphql"),
        "cargo run -p bff-mobile -- --print-schema > schema/mobile.graphql",
    );
    if let Err(message) = result {
        panic!("{message}");
    }
}

#[test]
fn a_field_added_without_regenerating_is_reported_with_the_fix() {
    let file = committed("web.graphql");
    let code_with_new_field =
        file.replacen("type User {\n", "type User {\n\tnickname: String!\n", 1);
    assert_ne!(code_with_new_field, file, "the SDL should have a User type");
    let message = check_sdl(
        &code_with_new_field,
        &file,
        "cargo run -p bff-web -- --print-schema > schema/web.graphql",
    )
    .expect_err("drift must be reported");
    assert!(message.contains("nickname"), "{message}");
    assert!(message.contains("--print-schema"), "{message}");
}
