//! New files that only their owner can read: mode 0600 on Unix; on Windows, a file created with a
//! protected ACL whose one entry gives the current user full access (nothing is inherited from the
//! directory, so no group or other user gets in).

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `path` for writing, readable and writable by the current user only; fails if it exists.
#[cfg(unix)]
pub fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Creates `path` for writing, readable and writable by the current user only; fails if it exists.
#[cfg(windows)]
pub fn create_new(path: &Path) -> io::Result<File> {
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{LocalFree, GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE, FILE_SHARE_READ,
        FILE_SHARE_WRITE,
    };

    let wide = |text: &std::ffi::OsStr| -> Vec<u16> { text.encode_wide().chain([0]).collect() };
    // D:P is a protected DACL (no inherited entries); FA is full access, for the user's SID only.
    let sddl = format!("D:P(A;;FA;;;{})", current_user_sid()?);
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: both pointers are valid for the call; the descriptor it allocates is freed below.
    let converted = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            wide(sddl.as_ref()).as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            std::ptr::null_mut(),
        )
    };
    if converted == 0 {
        return Err(io::Error::last_os_error());
    }
    let attributes = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor,
        bInheritHandle: 0,
    };
    // SAFETY: the name is NUL-terminated and the attributes outlive the call. The sharing is std's
    // own, so that SQLite and pg_dump can write the file by its name while it is open here.
    let handle = unsafe {
        CreateFileW(
            wide(path.as_os_str()).as_ptr(),
            GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    let created = match handle {
        INVALID_HANDLE_VALUE => Err(io::Error::last_os_error()),
        // SAFETY: a valid handle that nothing else owns.
        handle => Ok(unsafe { File::from_raw_handle(handle) }),
    };
    // SAFETY: allocated by the conversion above; the file keeps its own copy.
    unsafe { LocalFree(descriptor) };
    created
}

/// The current user's SID as text (`S-1-5-21-...`), from the process token.
#[cfg(windows)]
fn current_user_sid() -> io::Result<String> {
    use windows_sys::Win32::Foundation::{CloseHandle, LocalFree};
    use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
    use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    let mut token = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing; `token` is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // A TOKEN_USER and the SID it points to; a SID takes at most 68 bytes. u64s, for alignment.
    let mut buffer = [0u64; 32];
    let mut size = 0;
    // SAFETY: the buffer is writable for the length given.
    let read = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            size_of_val(&buffer) as u32,
            &mut size,
        )
    };
    let read_error = io::Error::last_os_error();
    // SAFETY: opened above.
    unsafe { CloseHandle(token) };
    if read == 0 {
        return Err(read_error);
    }
    // SAFETY: GetTokenInformation wrote a TOKEN_USER at the start of the (aligned) buffer.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text = std::ptr::null_mut();
    // SAFETY: `sid` points into `buffer`; the string it allocates is freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated UTF-16 string, read up to its terminator, then freed.
    let sid = unsafe {
        let length = (0..).take_while(|&i| *text.add(i) != 0).count();
        let sid = String::from_utf16_lossy(std::slice::from_raw_parts(text, length));
        LocalFree(text.cast());
        sid
    };
    Ok(sid)
}
