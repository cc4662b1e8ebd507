//! The few DOM reads the UI needs beyond Leptos, compiled for the browser only; the server
//! renders without them (its handlers never run).

/// An element's box in the viewport: left, top, width, height.
#[cfg(feature = "hydrate")]
pub fn client_rect(el: &leptos::web_sys::SvgElement) -> (f64, f64, f64, f64) {
    let r = web_sys::Element::get_bounding_client_rect(el);
    (r.left(), r.top(), r.width(), r.height())
}

#[cfg(not(feature = "hydrate"))]
pub fn client_rect(_el: &leptos::web_sys::SvgElement) -> (f64, f64, f64, f64) {
    (0.0, 0.0, 800.0, 600.0)
}

/// Whether a key press is aimed at a form field (typing), not at the page.
#[cfg(feature = "hydrate")]
pub fn in_form_field(ev: &leptos::ev::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

#[cfg(not(feature = "hydrate"))]
pub fn in_form_field(_ev: &leptos::ev::KeyboardEvent) -> bool {
    false
}

/// Routes the rest of this pointer's events to the canvas the press began on, so a release
/// outside it (over the panel, off the page) still ends the gesture there.
#[cfg(feature = "hydrate")]
pub fn capture_on_canvas(ev: &leptos::ev::PointerEvent) {
    use wasm_bindgen::JsCast;
    let canvas = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|e| e.closest("svg.canvas").ok().flatten());
    if let Some(canvas) = canvas {
        // Fails only for a pointer that is no longer down: nothing to capture then.
        let _ = canvas.set_pointer_capture(ev.pointer_id());
    }
}

#[cfg(not(feature = "hydrate"))]
pub fn capture_on_canvas(_ev: &leptos::ev::PointerEvent) {}

/// Marks a moment on the page's Performance timeline, for measurements to read.
#[cfg(feature = "hydrate")]
pub fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        // Only a malformed name fails, and the names are ours.
        let _ = p.mark(name);
    }
}

#[cfg(not(feature = "hydrate"))]
pub fn mark(_name: &str) {}
