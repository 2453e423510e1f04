package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"hastack.dev/hastack/internal/secret"
)

// Limits on what Load reads, checked before CUE opens any file: CUE reads a
// whole file into memory, so a .cue name that leads to /dev/zero would take
// every byte of memory, and one that leads to a FIFO would block forever.
const (
	MaxFileBytes  = 1 << 20 // one .cue file: a 99-node config is ~10 KiB
	MaxTotalBytes = 4 << 20 // every .cue file under the folder together
	MaxEntries    = 10000   // files and folders looked at under the folder
)

// fileProblems checks every .cue file CUE may read under abs (the module
// root: the package, cue.mod/module.cue and any package it imports): each
// must be a regular file, or a symlink to one, of at most MaxFileBytes, and
// together at most MaxTotalBytes. A symlink to a folder is refused, since
// the packages CUE could import through it would escape these checks.
// Folders whose name starts with "." (.git) are skipped: CUE cannot import
// from them.
//
// Symlinks to regular files are allowed: sharing one file between config
// folders with a symlink is common, and what matters is what the link leads
// to, which is checked like any file. The config is the user's own, so a
// file swapped between this check and CUE's read is not guarded against.
func (pl placer) fileProblems(abs string) (Problems, error) {
	var ps Problems
	var total int64
	entries := 0
	err := filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			ps = append(ps, pl.fileProblem(path, "cannot be read: "+unwrapPath(err)))
			return nil
		}
		if entries++; entries > MaxEntries {
			return fmt.Errorf("%s holds more than %d files and folders: give the folder of the config alone", pl.show(abs), MaxEntries)
		}
		if d.IsDir() {
			if path != abs && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		isCUE := strings.HasSuffix(d.Name(), ".cue")
		if d.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(path)
			switch {
			case err == nil && st.IsDir():
				ps = append(ps, pl.fileProblem(path, "is a symlink to a folder: hastack reads only the config folder's own tree (copy the folder in)"))
				return nil
			case !isCUE:
				return nil
			case err != nil:
				ps = append(ps, pl.fileProblem(path, "is a symlink that leads nowhere readable: "+unwrapPath(err)))
				return nil
			case !st.Mode().IsRegular():
				ps = append(ps, pl.fileProblem(path, fmt.Sprintf("is a symlink to %s: a .cue file must be a regular file", secret.FileKind(st.Mode()))))
				return nil
			}
			total += st.Size()
			return pl.sizeCheck(&ps, path, st.Size(), total)
		}
		if !isCUE {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			ps = append(ps, pl.fileProblem(path, "cannot be read: "+unwrapPath(err)))
			return nil
		}
		if !info.Mode().IsRegular() {
			ps = append(ps, pl.fileProblem(path, fmt.Sprintf("is %s: a .cue file must be a regular file", secret.FileKind(info.Mode()))))
			return nil
		}
		total += info.Size()
		return pl.sizeCheck(&ps, path, info.Size(), total)
	})
	return ps, err
}

// sizeCheck adds a problem when one file or all of them are too large.
// Past the total it stops the walk: the config is not read at all.
func (pl placer) sizeCheck(ps *Problems, path string, size, total int64) error {
	if size > MaxFileBytes {
		*ps = append(*ps, pl.fileProblem(path, fmt.Sprintf("is %d bytes: a .cue file may hold at most %d (1 MiB)", size, MaxFileBytes)))
	}
	if total > MaxTotalBytes {
		*ps = append(*ps, pl.fileProblem(path, fmt.Sprintf("brings the config's .cue files past %d bytes (4 MiB) in all", MaxTotalBytes)))
		return filepath.SkipAll
	}
	return nil
}

// fileProblem is a problem with a whole file: a file name and no line.
func (pl placer) fileProblem(path, msg string) Problem {
	return Problem{File: pl.show(path), Msg: msg}
}

// show shortens path to be relative to the working directory, as positions are.
func (pl placer) show(path string) string {
	if rel, err := filepath.Rel(pl.cwd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
