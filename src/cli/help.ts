import { defaultRegistry } from '../block/registry.js';
import { versionText } from './version-text.js';

/** `vdisk --help` text: qemu-img's layout with vdisk's commands and formats. */
export function helpText(): string {
  const formats = defaultRegistry.list().filter((d) => !d.recognisedOnly).map((d) => d.name).sort().join(' ');
  return `${versionText()}usage: vdisk [standard options] command [command options]
Virtual disk image utility (qemu-img compatible)

    '-h', '--help'       display this help and exit
    '-V', '--version'    output version information and exit
    '-T', '--trace'      [[enable=]<pattern>][,events=<file>][,file=<file>]
                         accepted for compatibility; vdisk traces with NODE_DEBUG=vdisk

Command syntax:
  amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] [--untrusted] -o options filename
  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] [--untrusted] filename
  bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] [--image-opts | -f fmt] [--untrusted] filename bitmap
  check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] [--untrusted] filename
  commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] [--untrusted] filename
  compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] [--untrusted] filename1 filename2
  convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] [--salvage] [--untrusted] filename [filename2 [...]] output_filename
  create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] [--untrusted] filename [size]
  dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] [--untrusted] if=input of=output
  info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] [--untrusted] filename
  inspect [--output=ofmt] [--allowed-formats=LIST] [--max-virtual-size=SIZE] [--max-inflated-size=SIZE] [--no-unwrap] filename
  map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] [--untrusted] filename
  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] [--untrusted] filename]
  rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] [-c] [--untrusted] -b backing_file [-F backing_fmt] filename
  resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] [--untrusted] filename [+ | -]size
  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] [--untrusted] filename
  validate --preset NAME [--output=ofmt] filename

Command parameters:
  'filename' is a disk image filename
  'fmt' is the disk image format. It is guessed automatically in most cases
  'size' is the disk image size in bytes. Optional suffixes
    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),
    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P)  are
    supported. 'b' is ignored.
  'output_filename' is the destination disk image filename
  'output_fmt' is the destination format
  'options' is a comma separated list of format specific options in a
    name=value format. Use -o help for an overview of the options supported by
    the used format
  '-c' indicates that target image must be compressed (qcow2 format only)
  '-p' show progress of command (only certain commands)
  '-q' use Quiet mode - do not print any output (except errors)
  '-S' indicates the consecutive number of bytes (defaults to 4k) that must
       contain only zeros for qemu-img to create a sparse image during
       conversion. If the number of bytes is 0, the source will not be scanned for
       unallocated or zero sectors, and the destination image will always be
       fully allocated
  '--output' takes the format in which the output must be done (human or json)
  '-n' skips the target volume creation (useful if the volume is created
       prior to running qemu-img)

vdisk-only options (every command that opens images):
  '--untrusted' confine backing files, data files and extents to the image's own directory
  '--trust=qemu|untrusted|none' the same, spelled out ('none' follows no external reference)
  '--max-chain-depth=N' most backing files below an image (default 256)
  '--no-lock' take no image locks (qemu's file.locking=off); without vdisk's native
       module, writing an image needs it, since nothing else would notice
  '--progress=json' (amend, commit, compare, convert, rebase) progress as one JSON object per
       line on stderr: phase, done, total, percent (0-100; 100 only on the last line, after
       success), bytesPerSecond (over the last seconds), eta (seconds, null while unknown);
       -q does not silence it
  '--header "Name: value"' (info, map, check, compare, convert, measure; repeatable) an extra
       HTTP header on every request to an image named by an http:// or https:// URL

vdisk-only ingest options (inspect, info, check, convert):
  '--allowed-formats=LIST' formats an upload may have (e.g. qcow2,raw); giving any ingest
       limit makes the trust mode 'none' unless --trust says otherwise ('untrusted' still
       follows files beside the upload, so a shared upload directory needs 'none')
  '--max-virtual-size=SIZE' largest virtual size an upload may have
  '--max-inflated-size=SIZE' largest size a wrapped (gzip, zstd, bzip2, zip) upload may inflate to (default 64G)
  '--no-unwrap' read wrapped (gzip, zstd, bzip2, zip) uploads as they are (raw), as qemu-img does
  '--max-pbkdf2-iterations=N' most PBKDF2 iterations an encrypted (LUKS) image may ask for (default 16777216)
  inspect exits 0 when the upload is safe, 2 when it is not, 1 when it cannot be read

vdisk-only cloud presets (convert, validate): azure, aws, esxi, gce, openstack, kubevirt, ova
  'convert --preset NAME SRC OUT' writes an image the cloud accepts (format, options and size
       rounding set by the preset; OUT '-' streams it); gce writes a .tar.gz, ova a tar
  'validate --preset NAME IMAGE' checks an image rule by rule: exit 0 accepted, 2 rejected,
       1 when it cannot be read

Supported formats: ${formats}
`;
}
