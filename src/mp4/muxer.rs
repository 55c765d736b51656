//! The muxer: frames in, through the tracks (timelines, decode times), into the file (header,
//! fragments), out to a [`Sink`]. It holds the two apart so that a new file never disturbs a
//! track.

use super::audio::AudioTrack;
use super::file::{FilePlan, FileState, Ready};
use super::tracks::Tracks;
use super::video::{Start, VideoTrack};
use super::{AudioInput, Config, Error, Sink, Stats, VideoInput};
use crate::sei::SenderReport;

/// Turns received frames into files: header, fragments, and (when segmenting) the next file.
pub(crate) struct Muxer {
    tracks: Tracks,
    file: FileState,
    stats: Stats,
    /// The latest video sender report written, of the current session.
    last_report: Option<SenderReport>,
    /// The next video sample opens a file (not the first): it repeats `last_report`, so that
    /// every file alone is enough to reconstruct capture times.
    repeat_report: bool,
}

impl Muxer {
    pub(crate) fn new(config: Config) -> Muxer {
        let plan = FilePlan {
            fragment_duration: config.fragment_duration,
            segment_duration: config.segment_duration,
        };
        Muxer {
            tracks: Tracks {
                video: config.video.as_ref().map(VideoTrack::new),
                audio: config.audio.as_ref().map(AudioTrack::new),
                timing: config.timing,
                conn: 0,
            },
            file: FileState::new(plan, config.creation_time),
            stats: Stats::default(),
            last_report: None,
            repeat_report: false,
        }
    }

    /// A new RTSP session begins, `conn` naming it (see `docs/timing-sei.md`): what the old
    /// one left waiting is dropped or written, and the tracks continue after the outage once
    /// the new session's first keyframe comes.
    pub(crate) fn new_session(&mut self, conn: u64, sink: &mut dyn Sink) -> Result<(), Error> {
        if let Some(video) = self.tracks.video.as_mut() {
            video.new_session();
        }
        self.write_ready_video(sink)?;
        if let Some(last) = self.tracks.audio.as_mut().and_then(AudioTrack::new_session) {
            self.add(Ready::Audio(last), sink)?;
        }
        self.tracks.conn = conn;
        // Another session's reports map another RTP clock.
        self.last_report = None;
        Ok(())
    }
    /// Takes a video frame, in decode order.
    pub(crate) fn push_video(
        &mut self,
        frame: VideoInput,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let Some(video) = self.tracks.video.as_mut() else {
            return Ok(());
        };
        if let Some(start) = video.push(frame, &mut self.stats) {
            let clock_rate = video.clock_rate;
            self.start_audio(start, clock_rate, sink)?;
        }
        self.write_ready_video(sink)
    }

    /// Takes an audio frame.
    pub(crate) fn push_audio(
        &mut self,
        frame: AudioInput,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let video_started = self.tracks.video.as_ref().is_none_or(VideoTrack::started);
        let Some(audio) = self.tracks.audio.as_mut() else {
            return Ok(());
        };
        if !video_started {
            audio.wait(frame, &mut self.stats);
            return Ok(());
        }
        self.accept_audio(frame, sink)
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Writes everything still held as a last fragment and the final header.
    ///
    /// Returns the stats; [`Muxer::has_output`] tells whether anything was recorded.
    pub(crate) fn finish(&mut self, sink: &mut dyn Sink) -> Result<Stats, Error> {
        if let Some(video) = self.tracks.video.as_mut() {
            video.flush();
        }
        self.write_ready_video(sink)?;
        if let Some(last) = self.tracks.audio.as_mut().and_then(AudioTrack::flush) {
            self.add(Ready::Audio(last), sink)?;
        }
        self.file.finish(&self.tracks, sink, &mut self.stats)?;
        Ok(self.stats.clone())
    }

    /// Audio starts at the video's first keyframe, with the frames that waited for it.
    fn start_audio(
        &mut self,
        start: Start,
        clock_rate: u32,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let Some(audio) = self.tracks.audio.as_mut() else {
            return Ok(());
        };
        for frame in audio.start_at(start, clock_rate) {
            self.accept_audio(frame, sink)?;
        }
        Ok(())
    }

    fn accept_audio(&mut self, frame: AudioInput, sink: &mut dyn Sink) -> Result<(), Error> {
        let Some(audio) = self.tracks.audio.as_mut() else {
            return Ok(());
        };
        match audio.push(frame, &mut self.stats) {
            Some(sample) => self.add(Ready::Audio(sample), sink),
            None => Ok(()),
        }
    }

    fn write_ready_video(&mut self, sink: &mut dyn Sink) -> Result<(), Error> {
        while let Some(sample) = self.tracks.video.as_mut().and_then(|v| v.ready.pop_front()) {
            self.add(Ready::Video(sample), sink)?;
        }
        Ok(())
    }

    /// Into the file, ending it first (and beginning the next) where a segment ends.
    fn add(&mut self, mut sample: Ready, sink: &mut dyn Sink) -> Result<(), Error> {
        if self.file.ends_before(&sample, &self.tracks) {
            self.file.finish(&self.tracks, sink, &mut self.stats)?;
            self.file = self.file.next(jiff::Timestamp::now());
            self.repeat_report = self.last_report.is_some();
        }
        if let Ready::Video(s) = &mut sample {
            if std::mem::take(&mut self.repeat_report)
                && s.sender_reports.is_empty()
                && let Some(sr) = self.last_report
            {
                s.sender_reports.push(sr);
            }
            if let Some(&sr) = s.sender_reports.last() {
                self.last_report = Some(sr);
            }
        }
        self.file.add(sample, &self.tracks, sink, &mut self.stats)
    }
}
