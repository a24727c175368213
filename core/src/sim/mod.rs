//! Simulated sensor fleet (fill dynamics, sensor realism, frame generation).
