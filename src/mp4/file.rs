//! The file being written: its header region, the fragment being built, and when to cut it.
//! This is all that a new file starts afresh; the tracks and their timelines go on.

use std::time::Duration;

use super::audio::AudioSample;
use super::fragment::{self, TrackFragment};
use super::header::{self, Times};
use super::timeline::duration_ticks;
use super::tracks::Tracks;
use super::video::VideoSample;
use super::{Error, Sink, Stats};

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_UNIX_OFFSET_SECS: u64 = 2_082_844_800;

/// A sample whose duration is known, ready for the file.
pub(super) enum Ready {
    Video(VideoSample),
    Audio(AudioSample),
}

pub(crate) struct FileState {
    /// A fragment closes once it holds this much media.
    fragment_duration: Duration,
    /// Seconds since the MP4 epoch.
    creation_time: u64,
    sequence_number: u32,
    /// How many video sample descriptions the header on disk has; `None` before it is first
    /// written (nothing is in the file yet).
    described: Option<usize>,
    video: TrackFragment,
    audio: TrackFragment,
    /// Whether a video sample has gone into this file.
    wrote_video: bool,
    /// Scratch buffer for moof + mdat header, reused across fragments.
    head_buf: Vec<u8>,
}

impl FileState {
    pub(super) fn new(fragment_duration: Duration, creation_time: jiff::Timestamp) -> FileState {
        let unix_secs = u64::try_from(creation_time.as_second()).unwrap_or(0);
        FileState {
            fragment_duration,
            creation_time: unix_secs + MP4_UNIX_OFFSET_SECS,
            sequence_number: 1,
            described: None,
            video: TrackFragment::default(),
            audio: TrackFragment::default(),
            wrote_video: false,
            head_buf: Vec::new(),
        }
    }

    /// Whether anything has been written to the sink.
    pub(super) fn has_output(&self) -> bool {
        self.described.is_some()
    }

    /// Adds a sample, first closing the open fragment if it must be.
    pub(super) fn add(
        &mut self,
        sample: Ready,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        if self.cuts_before(&sample, tracks) {
            self.write_fragment(tracks, sink, stats)?;
        }
        match (sample, &tracks.video) {
            (Ready::Video(mut s), Some(video)) => {
                // The first frame of a file and of a session name the session.
                if s.starts_session || !self.wrote_video {
                    s.timing.conn = Some(tracks.conn);
                }
                self.wrote_video = true;
                stats.sender_reports += self.video.push_video(s, video, tracks.timing);
                stats.video_frames += 1;
            }
            (Ready::Video(_), None) => {}
            (Ready::Audio(s), _) => {
                self.audio.push_audio(s);
                stats.audio_frames += 1;
            }
        }
        Ok(())
    }

    /// Whether the open fragment closes before `sample`: a video sample closes it when it is
    /// long enough, when the sample uses another sample description, or after a gap. With
    /// video, fragments close on the video's clock; the audio's own limit (twice as long) only
    /// bounds a fragment when video stops arriving.
    fn cuts_before(&self, sample: &Ready, tracks: &Tracks) -> bool {
        let limit = |clock_rate| duration_ticks(self.fragment_duration, clock_rate);
        match (sample, &tracks.video, &tracks.audio) {
            (Ready::Video(s), Some(video), _) => {
                let frag = &self.video;
                !frag.is_empty()
                    && (frag.span(s.dts) >= limit(video.clock_rate)
                        || frag.sample_description_index != s.sample_description_index
                        || s.after_gap)
            }
            (Ready::Audio(s), video, Some(audio)) => {
                let factor = if video.is_some() { 2 } else { 1 };
                let frag = &self.audio;
                !frag.is_empty()
                    && (frag.span(s.t) >= limit(audio.clock_rate) * factor || s.after_gap)
            }
            _ => false,
        }
    }

    /// Writes the open fragment, after the header if it does not yet describe every sample
    /// description in use.
    fn write_fragment(
        &mut self,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        let entries = tracks.video.as_ref().map_or(0, |v| v.sample_entries.len());
        if self.described != Some(entries) {
            sink.write_header(&header::encode(tracks, &self.times(false))?)?;
            self.described = Some(entries);
        }
        let (video, audio, head) = (&mut self.video, &mut self.audio, &mut self.head_buf);
        fragment::write(self.sequence_number, video, audio, head, sink)?;
        self.sequence_number = self.sequence_number.wrapping_add(1);
        stats.fragments += 1;
        Ok(())
    }

    /// Writes what is left as a last fragment, and the header with the durations.
    pub(super) fn finish(
        &mut self,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        if !self.video.is_empty() || !self.audio.is_empty() {
            self.write_fragment(tracks, sink, stats)?;
        }
        if self.has_output() {
            sink.write_header(&header::encode(tracks, &self.times(true))?)?;
        }
        let secs = |end: u64, rate: u32| end as f64 / f64::from(rate);
        let video = tracks
            .video
            .as_ref()
            .map_or(0.0, |v| secs(self.video.end, v.clock_rate));
        let audio = tracks
            .audio
            .as_ref()
            .map_or(0.0, |a| secs(self.audio.end, a.clock_rate));
        stats.duration_secs = video.max(audio);
        Ok(())
    }

    fn times(&self, finished: bool) -> Times {
        Times {
            creation_time: self.creation_time,
            ends: finished.then_some((self.video.end, self.audio.end)),
        }
    }
}
