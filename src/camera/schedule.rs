//! One session's media: the clips' frames and audio merged by time, paced in real time (or
//! faster), looping with continuing timestamps, a sender report per stream each second of
//! media, and the configured quirks applied on the way out.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::clip::{AudioCodec, Clip, ClipAudio, ClipFrame};
use super::clock::SessionClock;
use super::rtp::{self, Dest, RtpSender, Writer};
use super::{SentFrame, SentReport, Shared};

/// How early a camera that writes its truth wakes before a send is due.
const PRECISE_WAKE: Duration = Duration::from_millis(2);

/// What happens next in a session: a video frame or an audio frame, with its index in the clip.
enum Event<'a> {
    Video(usize, &'a ClipFrame),
    Audio(usize, &'a (i64, Vec<u8>), &'a ClipAudio),
}

/// A session's sending state, across clips and loops.
pub(crate) struct Schedule {
    shared: Arc<Shared>,
    writer: Writer,
    senders: [RtpSender; 2],
    /// When media time 0 was (moved on by stalls).
    t0: Instant,
    /// Media second of each stream's next sender report.
    next_report: [i64; 2],
    /// Where the current loop of the clips starts, at 90 kHz.
    offset_90k: i64,
    lost_one: bool,
    keyframes_sent: usize,
    /// Which of the camera's sessions this is.
    session: usize,
    video_frames_sent: usize,
    broke_one: bool,
    broke_rtcp: bool,
    broke_rtp: bool,
    stepped_back: bool,
    /// The RTP time of the `endless_fu_a_at` quirk's never-ending frame, once begun.
    endless_rtp: Option<u32>,
    clock: SessionClock,
}

impl Schedule {
    pub(super) fn new(shared: Arc<Shared>, writer: Writer, dests: [Option<Dest>; 2]) -> Schedule {
        let [video, audio] = dests;
        let ssrcs = shared.config.ssrcs;
        let session = shared.sessions.fetch_add(1, Ordering::Relaxed);
        let clock = SessionClock::new(&shared.config.clock, shared.config.ntp_base, session);
        Schedule {
            shared,
            writer,
            senders: [
                RtpSender::new(0, video, ssrcs[0]),
                RtpSender::new(1, audio, ssrcs[1]),
            ],
            t0: Instant::now(),
            next_report: [0; 2],
            offset_90k: 0,
            lost_one: false,
            keyframes_sent: 0,
            session,
            video_frames_sent: 0,
            broke_one: false,
            broke_rtcp: false,
            broke_rtp: false,
            stepped_back: false,
            endless_rtp: None,
            clock,
        }
    }

    /// Sends until the connection fails (or the task is aborted).
    pub(super) async fn run(mut self) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        shared.progress.send_replace((self.session, 0.0));
        let mut first_loop = true;
        loop {
            for clip in &shared.config.clips {
                let skip = if first_loop {
                    shared.config.quirks.start_at_frame
                } else {
                    0
                };
                first_loop = false;
                let offset_secs = self.offset_90k as f64 / 90_000.0;
                for (t, event) in self.events(clip, skip) {
                    let media = offset_secs + t;
                    self.pace(media).await;
                    self.send_reports(media, clip).await?;
                    self.send_broken_packets(media).await?;
                    let late = self.clock.next_jitter();
                    if late > 0.0 {
                        self.pace(media + late).await;
                    }
                    match event {
                        Event::Video(i, f) => self.send_video(i, f, clip, media).await?,
                        Event::Audio(i, a, audio) => {
                            let secs = offset_secs + a.0 as f64 / f64::from(audio.rate);
                            self.send_audio(i, &a.1, audio, secs, media).await?;
                        }
                    }
                    // Stored even with nobody waiting: `sent_secs` reads it.
                    shared.progress.send_replace((self.session, media));
                }
                self.offset_90k += clip.duration;
            }
        }
    }

    /// The clip's video (decode order) from frame `skip`, and its audio from then on, merged
    /// by send time (seconds into the clip).
    fn events<'c>(&self, clip: &'c Clip, skip: usize) -> Vec<(f64, Event<'c>)> {
        let start = clip
            .video
            .get(skip)
            .map_or(0.0, |f| f.dts as f64 / 90_000.0);
        let mut events: Vec<(f64, Event<'_>)> = clip
            .video
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, f)| (f.dts as f64 / 90_000.0, Event::Video(i, f)))
            .collect();
        if let (Some(audio), Some(_)) = (&clip.audio, &self.senders[1].dest) {
            events.extend(audio.frames.iter().enumerate().filter_map(|(i, a)| {
                let t = a.0 as f64 / f64::from(audio.rate);
                (t >= start).then_some((t, Event::Audio(i, a, audio)))
            }));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        events
    }

    /// Waits until `media` is due, after any stall the camera was told to make.
    async fn pace(&mut self, media: f64) {
        let stall = self
            .shared
            .stall_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(until) = stall {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep_until(until).await;
                self.t0 += until - now;
            }
        }
        let speed = self.shared.config.speed;
        let due = self.t0 + Duration::from_secs_f64(media / speed);
        if self.shared.config.truth.is_none() {
            tokio::time::sleep_until(due).await;
            return;
        }
        // A camera writing its truth sends on time: tokio's timer wakes up to two
        // milliseconds late, which would count as latency in every measurement made of it.
        // So it wakes early and yields until due (a few percent of a core).
        tokio::time::sleep_until(due.checked_sub(PRECISE_WAKE).unwrap_or(due)).await;
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
    }

    /// The camera's clock reset, in seconds, at media time `media`.
    fn jump_at(&self, media: f64) -> f64 {
        match self.shared.config.quirks.timestamp_jump {
            Some((at, by)) if media >= at => by,
            _ => 0.0,
        }
    }

    /// Each stream's sender reports due by `media`: one per second of media, the audio's half a
    /// second after the video's. A real camera's streams report on their own schedules
    /// (RFC 3550 §6.2 randomises each one's interval); sent back to back, an audio report
    /// would hide in the video's shadow, as it did from retina-record 0.2's bug.
    async fn send_reports(&mut self, media: f64, clip: &Clip) -> anyhow::Result<()> {
        let rtp_starts = self.shared.config.rtp_start;
        for (stream, rtp_start) in rtp_starts.into_iter().enumerate() {
            if self.senders[stream].dest.is_none() {
                continue;
            }
            let rate = if stream == 0 {
                90_000
            } else {
                clip.audio.as_ref().map_or(8000, |a| a.rate)
            };
            let phase = if stream == 0 { 0.0 } else { 0.5 };
            while (self.next_report[stream] as f64 + phase) <= media {
                let at = self.next_report[stream] as f64 + phase;
                let ticks = (at + self.jump_at(at)) * f64::from(rate);
                let rtp = rtp_start.wrapping_add(self.clock.rtp_ticks(ticks) as u32);
                let ntp = self.clock.report_ntp_at(at);
                self.senders[stream]
                    .send_sender_report(&self.writer, ntp, rtp)
                    .await?;
                if self.shared.config.keep_log {
                    let mut log = self.shared.log();
                    let after_video_frames = log
                        .frames
                        .iter()
                        .filter(|f| f.stream == 0 && f.session == self.session)
                        .count();
                    log.reports.push(SentReport {
                        session: self.session,
                        stream,
                        after_video_frames,
                        ntp,
                        rtp,
                    });
                }
                self.next_report[stream] += 1;
            }
        }
        Ok(())
    }

    /// Frame `i` of `clip`: parameter sets before a keyframe (as cameras send them), maybe lost,
    /// broken or followed by an empty access unit, as the quirks say.
    async fn send_video(
        &mut self,
        i: usize,
        f: &ClipFrame,
        clip: &Clip,
        media: f64,
    ) -> anyhow::Result<()> {
        if self.senders[0].dest.is_none() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let quirks = &shared.config.quirks;
        let exact = self.offset_90k + f.pts + (self.jump_at(media) * 90_000.0) as i64;
        let pts = self.clock.rtp_ticks(exact as f64);
        let rtp = self.shared.config.rtp_start[0].wrapping_add(pts as u32);
        if quirks.endless_fu_a_at.is_some_and(|at| media >= at) {
            let first = self.endless_rtp.is_none();
            let rtp = *self.endless_rtp.get_or_insert(rtp);
            return self.send_fragment(clip, f, rtp, first).await;
        }
        if quirks.cut_frames_at.is_some_and(|at| media >= at) {
            let first = self.endless_rtp.replace(rtp).is_none();
            return self.send_fragment(clip, f, rtp, first).await;
        }
        let mut nals: Vec<&[u8]> = Vec::new();
        if f.keyframe {
            if self.keyframes_sent > 0 || !quirks.no_sdp_parameters {
                nals.extend(clip.parameter_sets.iter().map(Vec::as_slice));
            }
            self.keyframes_sent += 1;
        }
        nals.extend(f.nals.iter().map(Vec::as_slice));
        let lose = !self.lost_one && quirks.lose_video_frame_at.is_some_and(|at| media >= at);
        self.lost_one |= lose;
        let broken = self.break_frame(media, clip, &nals);
        let changed_ssrc = quirks.ssrc_change_at.is_some_and(|at| media >= at);
        let step_back = !self.stepped_back && quirks.seq_jump_back_at.is_some_and(|at| media >= at);
        self.stepped_back |= step_back;
        let sender = &mut self.senders[0];
        if step_back {
            sender.step_back(1000);
        }
        if changed_ssrc {
            sender.ssrc = self.shared.config.ssrcs[0] ^ 0xFFFF_FFFF;
        }
        sender
            .send_video(&self.writer, clip.codec, rtp, &nals, lose)
            .await?;
        sender.max_payload = rtp::MAX_PAYLOAD;
        sender.skip_next = 0;
        self.video_frames_sent += 1;
        let delivered = !(lose || broken || changed_ssrc);
        if let Some(truth) = self.shared.truth.as_ref().filter(|_| delivered) {
            // Captured at its presentation time, by the camera's clock.
            let captured = (self.offset_90k + f.pts) as f64 / 90_000.0;
            let sent = self.senders[0].last_marked_at;
            truth.frame(self.session, rtp, self.clock.ntp_at(captured), sent);
        }
        if self.shared.config.keep_log && delivered {
            self.shared.log().frames.push(SentFrame {
                session: self.session,
                stream: 0,
                rtp,
                pts,
                keyframe: f.keyframe,
                sent_ntp: self.senders[0].last_marked_at,
            });
        }
        if quirks.empty_at(i) {
            let filler = [clip.codec.filler_nal()];
            self.senders[0]
                .send_video(
                    &self.writer,
                    clip.codec,
                    rtp.wrapping_add(1),
                    &filler,
                    false,
                )
                .await?;
        }
        Ok(())
    }

    /// Whether the quirks break the next frame, `nals`: it goes out in small fragmentation
    /// units, its packets up to the first fragment of its last NAL unit left out without a gap
    /// in the sequence numbers, so that the receiver meets the middle of a fragmented picture.
    fn break_frame(&mut self, media: f64, clip: &Clip, nals: &[&[u8]]) -> bool {
        const SMALL: usize = 300;
        let quirks = &self.shared.config.quirks;
        let mid_start = quirks.start_mid_frame && self.video_frames_sent == 0;
        let broken_fu_a = !self.broke_one && quirks.broken_fu_a_at.is_some_and(|at| media >= at);
        self.broke_one |= broken_fu_a;
        if !(mid_start || broken_fu_a) {
            return false;
        }
        let header = clip.codec.header_len();
        let packets = |nal: &&[u8]| match nal.len() {
            n if n <= SMALL => 1,
            n => (n - header).div_ceil(SMALL - header - 1),
        };
        let before_last = nals
            .split_last()
            .map_or(0, |(_, rest)| rest.iter().map(packets).sum());
        let sender = &mut self.senders[0];
        sender.max_payload = SMALL;
        sender.skip_next = before_last + 1;
        true
    }

    /// One FU-A fragment of `f`'s last NAL unit at `rtp`, never the last fragment: the first of
    /// its NAL unit when `first`, else one from the middle.
    async fn send_fragment(
        &mut self,
        clip: &Clip,
        f: &ClipFrame,
        rtp: u32,
        first: bool,
    ) -> anyhow::Result<()> {
        let Some(nal) = f.nals.last() else {
            return Ok(());
        };
        let Some((prefix, nal_type)) = clip.codec.fu_header(nal) else {
            return Ok(());
        };
        let start = if first { 0x80 } else { 0 };
        let mut payload = prefix;
        payload.push(start | nal_type);
        payload.extend_from_slice(&nal[clip.codec.header_len()..]);
        payload.truncate(rtp::MAX_PAYLOAD);
        self.senders[0]
            .send_payload(&self.writer, false, rtp, &payload)
            .await
    }

    /// The malformed packets the quirks ask for at `media`.
    async fn send_broken_packets(&mut self, media: f64) -> anyhow::Result<()> {
        let quirks = &self.shared.config.quirks;
        if !self.broke_rtcp && quirks.malformed_rtcp_at.is_some_and(|at| media >= at) {
            self.broke_rtcp = true;
            // A sender report whose length field says more than the packet holds.
            let sr = [0x80, 200, 0, 6, 0, 0, 0, 1];
            for sender in &self.senders {
                sender.deliver(&self.writer, &sr, true).await?;
            }
        }
        if !self.broke_rtp && quirks.malformed_rtp_at.is_some_and(|at| media >= at) {
            self.broke_rtp = true;
            // RTP version 1: no RTP receiver takes it.
            let pkt = [0x40, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x65];
            self.senders[0].deliver(&self.writer, &pkt, false).await?;
        }
        Ok(())
    }

    /// Audio frame `i`, due `secs` into the stream (before quirks), sent at `media`.
    async fn send_audio(
        &mut self,
        i: usize,
        frame: &[u8],
        audio: &ClipAudio,
        secs: f64,
        media: f64,
    ) -> anyhow::Result<()> {
        let quirks = &self.shared.config.quirks;
        let endless = quirks.endless_fu_a_at.is_some_and(|at| media >= at)
            || quirks.cut_frames_at.is_some_and(|at| media >= at);
        if self.senders[1].dest.is_none() || endless {
            return Ok(());
        }
        let rate = f64::from(audio.rate);
        let mut secs = secs + self.jump_at(media);
        if let Some((at, by)) = quirks.audio_step_back
            && media >= at
        {
            secs -= by;
        }
        let pts = self.clock.rtp_ticks(secs * rate);
        let rtp = self.shared.config.rtp_start[1].wrapping_add(pts as u32);
        let empty = quirks.empty_at(i) && matches!(audio.codec, AudioCodec::Aac(_));
        let payload = if empty { &[][..] } else { frame };
        self.senders[1]
            .send_audio(&self.writer, audio, rtp, payload)
            .await?;
        if self.shared.config.keep_log {
            self.shared.log().frames.push(SentFrame {
                session: self.session,
                stream: 1,
                rtp,
                pts,
                keyframe: true,
                sent_ntp: self.senders[1].last_marked_at,
            });
        }
        Ok(())
    }
}
