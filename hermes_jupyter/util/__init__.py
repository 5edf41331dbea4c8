"""Small helpers every layer may use: text cutting, one scheduler thread, atomic files, env flags."""
