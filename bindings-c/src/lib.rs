//! placeholder, replaced by the c binding
