"""Every use of Faust and aiokafka internals, pinned to the tested versions."""
