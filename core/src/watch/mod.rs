//! The watch registry.
