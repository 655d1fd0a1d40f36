//! placeholder, replaced by the python binding
