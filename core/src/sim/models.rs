//! The sensor models the simulator can put on a container: what each one measures,
//! at which resolution, on which fPort, and how a simulated measurement becomes the
//! [`Reading`] its real encoder (`Registry::global()`) turns into a frame.

use crate::reading::{alarm, Reading, StoredReading};

/// How a model carries temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temp {
    None,
    /// 0.1 °C, signed.
    Tenth,
    /// Whole °C, 0..=255 (Dingtek DF703: no sign; colder reads 0).
    WholeNonNeg,
}

/// What a model's frame carries (and so what the simulator sets).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub name: &'static str,
    /// fPort its uplinks use.
    pub fport: u8,
    /// Measurement noise, mm (1 sigma): laser time-of-flight vs ultrasonic.
    pub noise_mm: f64,
    /// Probability that one measurement gets no echo.
    pub no_echo_p: f64,
    pub battery_pct: bool,
    /// Battery voltage resolution (V), 0 = not carried.
    pub battery_v_res: f64,
    pub temp: Temp,
    pub tilt: bool,
    /// Fire alarm bit in the frame.
    pub fire: bool,
    /// A "no echo" measurement can be encoded (otherwise a spike is reported).
    pub no_echo: bool,
    /// Stored readings resent after an outage (tid1).
    pub stored: bool,
    /// Interrupt (event) uplinks are flagged in the frame.
    pub interrupt: bool,
    /// Lid-open and low-battery flags in the frame (tid1).
    pub status_flags: bool,
    /// Full and low-battery alarm bits (Dingtek).
    pub alarm_bits: bool,
    /// Device-side measurement time in the frame.
    pub measured_at: bool,
    /// Share of each container kind that gets this model (glass, paper, packaging,
    /// grouping, park), in percent.
    pub mix: [f64; 5],
    /// OUI-like DevEUI prefix (24 bits).
    pub eui_prefix: u64,
}

/// The encodable models the fleet uses, with the default mix per container kind.
pub const MODELS: [Caps; 6] = [
    Caps {
        name: "tid1",
        fport: 10,
        noise_mm: 4.0,
        no_echo_p: 0.001,
        battery_pct: true,
        battery_v_res: 0.01,
        temp: Temp::Tenth,
        tilt: true,
        fire: true,
        no_echo: true,
        stored: true,
        interrupt: true,
        status_flags: true,
        alarm_bits: false,
        measured_at: true,
        mix: [30.0, 30.0, 30.0, 25.0, 20.0],
        eui_prefix: 0x70b3d5,
    },
    Caps {
        name: "milesight-em310-udl",
        fport: 85,
        noise_mm: 10.0,
        no_echo_p: 0.003,
        battery_pct: true,
        battery_v_res: 0.0,
        temp: Temp::None,
        tilt: true,
        fire: false,
        no_echo: true,
        stored: false,
        interrupt: false,
        status_flags: false,
        alarm_bits: false,
        measured_at: false,
        mix: [15.0, 15.0, 15.0, 20.0, 30.0],
        eui_prefix: 0x24e124,
    },
    Caps {
        name: "milesight-em400-udl",
        fport: 85,
        noise_mm: 10.0,
        no_echo_p: 0.003,
        battery_pct: true,
        battery_v_res: 0.0,
        temp: Temp::Tenth,
        tilt: true,
        fire: false,
        no_echo: true,
        stored: false,
        interrupt: false,
        status_flags: false,
        alarm_bits: false,
        measured_at: false,
        mix: [20.0, 20.0, 20.0, 20.0, 20.0],
        eui_prefix: 0x24e125,
    },
    Caps {
        name: "dragino-ldds75",
        fport: 2,
        noise_mm: 10.0,
        no_echo_p: 0.004,
        battery_pct: false,
        battery_v_res: 0.001,
        temp: Temp::Tenth,
        tilt: false,
        fire: false,
        no_echo: true,
        stored: false,
        interrupt: true,
        status_flags: false,
        alarm_bits: false,
        measured_at: false,
        mix: [15.0, 15.0, 15.0, 15.0, 10.0],
        eui_prefix: 0xa84041,
    },
    Caps {
        name: "decentlab-dl-mbx",
        fport: 1,
        noise_mm: 8.0,
        no_echo_p: 0.003,
        battery_pct: false,
        battery_v_res: 0.001,
        temp: Temp::None,
        tilt: false,
        fire: false,
        no_echo: true,
        stored: false,
        interrupt: false,
        status_flags: false,
        alarm_bits: false,
        measured_at: false,
        mix: [10.0, 10.0, 10.0, 10.0, 5.0],
        eui_prefix: 0x70b3d6,
    },
    Caps {
        name: "dingtek-df703",
        fport: 3,
        noise_mm: 10.0,
        no_echo_p: 0.0,
        battery_pct: false,
        battery_v_res: 0.0,
        temp: Temp::WholeNonNeg,
        tilt: true,
        fire: true,
        no_echo: false,
        stored: false,
        interrupt: false,
        status_flags: false,
        alarm_bits: true,
        measured_at: false,
        mix: [10.0, 10.0, 10.0, 10.0, 15.0],
        eui_prefix: 0x8c1f64,
    },
];

pub fn model_index(name: &str) -> Option<usize> {
    MODELS.iter().position(|m| m.name == name)
}

pub fn model_names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// A measurement as the sensor takes it (physical values, before rounding).
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure {
    /// `None` = no echo.
    pub distance_mm: Option<f64>,
    pub temperature_c: f64,
    pub battery_pct: f64,
    pub battery_v: f64,
    pub tilt: bool,
    pub fire: bool,
    pub lid_open: bool,
    pub interrupt: bool,
    /// The sensor thinks the container is full (Dingtek's alarm threshold).
    pub full: bool,
    pub measured_at_ms: i64,
}

/// The values a frame of this model will carry, rounded to its resolution
/// (NaN / -1 = not carried). These are also what the ground truth records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reported {
    pub distance_mm: f64,
    pub temperature_c: f64,
    pub battery_pct: f64,
    pub battery_v: f64,
    /// -1 not carried, 0/1
    pub tilt: i8,
    pub fire: i8,
    pub alarm_flags: u16,
}

impl Caps {
    /// Round a measurement to what this model reports.
    pub fn report(&self, m: &Measure) -> Reported {
        let distance_mm = match m.distance_mm {
            // Dingtek cannot say "no echo": it reports its maximum range.
            None if !self.no_echo => 6000.0,
            None => f64::NAN,
            Some(d) => d.round().clamp(30.0, 65_000.0),
        };
        let temperature_c = match self.temp {
            Temp::None => f64::NAN,
            Temp::Tenth => (m.temperature_c * 10.0).round().clamp(-400.0, 2500.0) / 10.0,
            Temp::WholeNonNeg => m.temperature_c.round().clamp(0.0, 255.0),
        };
        let battery_pct = if self.battery_pct {
            m.battery_pct.round().clamp(0.0, 100.0)
        } else {
            f64::NAN
        };
        let battery_v = if self.battery_v_res > 0.0 {
            let v = m.battery_v.clamp(2.0, 4.5);
            if self.battery_v_res >= 0.01 {
                (v * 100.0).round() / 100.0
            } else {
                (v * 1000.0).round() / 1000.0
            }
        } else {
            f64::NAN
        };
        let low = m.battery_pct < 15.0;
        let mut flags = 0u16;
        if self.status_flags {
            if m.lid_open {
                flags |= alarm::LID_OPEN;
            }
            if low {
                flags |= alarm::LOW_BATTERY;
            }
        }
        if self.interrupt && m.interrupt {
            flags |= alarm::INTERRUPT;
        }
        if self.alarm_bits {
            if m.full {
                flags |= alarm::FULL;
            }
            if low {
                flags |= alarm::LOW_BATTERY;
            }
        }
        if self.fire && m.fire {
            flags |= alarm::FIRE;
        }
        if self.tilt && m.tilt && (self.status_flags || self.alarm_bits) {
            flags |= alarm::TILT;
        }
        if self.no_echo
            && m.distance_mm.is_none()
            && (self.status_flags || self.name == "dragino-ldds75")
        {
            flags |= alarm::NO_SENSOR;
        }
        Reported {
            distance_mm,
            temperature_c,
            battery_pct,
            battery_v,
            tilt: if self.tilt { i8::from(m.tilt) } else { -1 },
            fire: if self.fire { i8::from(m.fire) } else { -1 },
            alarm_flags: flags,
        }
    }

    /// Fill the reading the encoder takes.
    pub fn to_reading(
        &self,
        rep: &Reported,
        measured_at_ms: i64,
        stored: &[(i64, Option<u16>)],
        out: &mut Reading,
    ) {
        out.clear();
        let opt = |x: f64| (!x.is_nan()).then_some(x);
        out.distance_mm = opt(rep.distance_mm);
        out.temperature_c = opt(rep.temperature_c);
        out.battery_pct = opt(rep.battery_pct);
        out.battery_v = opt(rep.battery_v);
        out.tilt = (rep.tilt >= 0).then_some(rep.tilt == 1);
        out.fire_alarm = (rep.fire >= 0).then_some(rep.fire == 1);
        out.alarm_flags = rep.alarm_flags & !(alarm::NO_SENSOR | alarm::STORED);
        if self.measured_at {
            out.measured_at_ms = Some(measured_at_ms);
        }
        if self.stored {
            for &(t, d) in stored {
                out.stored.push(StoredReading {
                    measured_at_ms: t,
                    distance_mm: d.map(f64::from),
                    temperature_c: None,
                });
            }
        }
    }
}
