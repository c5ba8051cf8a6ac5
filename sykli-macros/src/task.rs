//! Expansion of `#[sykli::task]`.
//!
//! For `async fn lint(ctx: &TaskCtx) -> Result<(), E>` the macro keeps the function and adds:
//! - a hidden marker type `struct lint {}` (type namespace only, so it sits beside the
//!   function) implementing `TaskMarker` with the task's name; `after = [lint]` refers to it,
//!   so an unknown function is a compile error naming it, and `use checks::lint;` imports
//!   both the function and its marker;
//! - a type-erased wrapper calling the function, and an `inventory` registration holding the
//!   wrapper and every attribute, collected by `sykli::main!` at startup.
//!
//! For `#[sykli::task(cmd = "...")] fn name() {}` the empty function is replaced by the marker
//! type and the registration of a shell task.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::attrs::{Dep, Prefer, TaskAttrs};

/// Expands `#[sykli::task(attr)] item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let attrs: TaskAttrs = syn::parse2(attr)?;
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[sykli::task] applies to a function: `async fn name(ctx: &TaskCtx) -> Result<(), E>`",
        )
    })?;
    check_common(&func)?;
    if attrs.cmd.is_some() {
        expand_shell(attrs, func)
    } else {
        expand_native(attrs, func)
    }
}

fn check_common(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a sykli task function cannot be generic",
        ));
    }
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "a sykli task cannot be a `const fn`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        return Err(syn::Error::new(u.span(), "a sykli task cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new(
            abi.span(),
            "a sykli task cannot be `extern`",
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(v.span(), "a sykli task cannot be variadic"));
    }
    Ok(())
}

/// The task name: `name = "..."`, else the function name with `_` replaced by `-`.
fn task_name(attrs: &TaskAttrs, func: &ItemFn) -> String {
    match &attrs.name {
        Some(n) => n.value(),
        None => func
            .sig
            .ident
            .to_string()
            .trim_start_matches("r#")
            .replace('_', "-"),
    }
}

fn expand_shell(attrs: TaskAttrs, func: ItemFn) -> syn::Result<TokenStream> {
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            "a shell task (`cmd = \"...\"`) is a plain empty `fn name() {}`, not `async`",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "a shell task (`cmd = \"...\"`) takes no parameters: `fn name() {}`",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        return Err(syn::Error::new(
            ty.span(),
            "a shell task (`cmd = \"...\"`) returns nothing: `fn name() {}`",
        ));
    }
    if !func.block.stmts.is_empty() {
        return Err(syn::Error::new(
            func.block.span(),
            "a shell task (`cmd = \"...\"`) must have an empty body: the command is what runs; \
             drop `cmd` to make it a native `async fn` task",
        ));
    }
    let cmd = attrs.cmd.clone().expect("shell tasks have cmd");
    let action = quote!(::sykli::__private::TaskAction::Shell(#cmd));
    let marker_attrs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc") || a.path().is_ident("cfg"))
        .collect();
    let body = registration(&attrs, &func, action, quote!())?;
    Ok(quote! {
        #(#marker_attrs)*
        #body
    })
}

fn expand_native(attrs: TaskAttrs, func: ItemFn) -> syn::Result<TokenStream> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "a sykli task must be an `async fn name(ctx: &TaskCtx) -> Result<(), E>`; \
             for a shell task write `#[sykli::task(cmd = \"...\")] fn name() {}`",
        ));
    }
    let param_ty = match (sig.inputs.len(), sig.inputs.first()) {
        (1, Some(FnArg::Typed(pt))) => match &*pt.ty {
            Type::Reference(r) if r.mutability.is_none() => r.elem.clone(),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "the parameter of a sykli task must be a shared reference: `ctx: &TaskCtx`",
                ));
            }
        },
        (1, Some(FnArg::Receiver(r))) => {
            return Err(syn::Error::new(
                r.span(),
                "a sykli task is a free function, it cannot take `self`",
            ));
        }
        _ => {
            let span = if sig.inputs.is_empty() {
                sig.paren_token.span.join()
            } else {
                sig.inputs.span()
            };
            return Err(syn::Error::new(
                span,
                "a sykli task takes exactly one parameter: `ctx: &TaskCtx`",
            ));
        }
    };
    let ret_ty = match &sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => ty.clone(),
        ReturnType::Type(_, ty) => {
            return Err(syn::Error::new(
                ty.span(),
                "a sykli task must return `Result<(), E>` (E: an error such as `anyhow::Error` \
                 or `Box<dyn std::error::Error + Send + Sync>`)",
            ));
        }
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.paren_token.span.close(),
                "a sykli task must return `Result<(), E>` (E: an error such as `anyhow::Error` \
                 or `Box<dyn std::error::Error + Send + Sync>`)",
            ));
        }
    };

    let ident = &sig.ident;
    // Type errors point at the user's parameter and return types.
    let ctx_arg = quote_spanned!(param_ty.span()=> &ctx);
    let ok = quote_spanned!(ret_ty.span()=> ::core::result::Result::Ok(()));
    let err = quote_spanned!(ret_ty.span()=> ::core::result::Result::Err(error));
    let convert = quote_spanned!(ret_ty.span()=>
        (&&::sykli::__private::ErrorSlot::new(error)).to_native_error()
    );
    let wrapper = format_ident!(
        "__sykli_native_{}",
        ident.to_string().trim_start_matches("r#")
    );
    let wrapper_fn = quote! {
        #[allow(non_snake_case)]
        fn #wrapper(
            ctx: ::sykli::TaskCtx,
        ) -> ::sykli::__private::BoxFuture<
            'static,
            ::core::result::Result<(), ::sykli::__private::NativeError>,
        > {
            ::std::boxed::Box::pin(async move {
                #[allow(unused_imports)]
                use ::sykli::__private::{ViaBoxError as _, ViaNativeError as _};
                match #ident(#ctx_arg).await {
                    #ok => ::core::result::Result::Ok(()),
                    #err => ::core::result::Result::Err(#convert),
                }
            })
        }
    };
    let action = quote!(::sykli::__private::TaskAction::Native(#wrapper));
    let body = registration(&attrs, &func, action, wrapper_fn)?;
    Ok(quote! {
        #func
        #body
    })
}

/// `Result<..>`, `anyhow::Result<..>`, `std::io::Result<..>`...: the last segment is `Result`.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Result")),
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}

/// The marker type, its `TaskMarker` impl and the inventory registration.
fn registration(
    attrs: &TaskAttrs,
    func: &ItemFn,
    action: TokenStream,
    extra_items: TokenStream,
) -> syn::Result<TokenStream> {
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let name = task_name(attrs, func);
    let fn_name = ident.to_string().trim_start_matches("r#").to_string();

    let after = attrs.after.iter().map(|d| match d {
        Dep::Name(lit) => quote!(#lit),
        Dep::Path(path) => {
            quote_spanned!(path.span()=> <#path as ::sykli::__private::TaskMarker>::NAME)
        }
    });
    let inputs = &attrs.inputs;
    let requires = &attrs.requires;
    let secrets = &attrs.secrets;
    let outputs = attrs.outputs.iter().map(|(k, v)| quote!((#k, #v)));
    let env = attrs.env.iter().map(|(k, v)| quote!((#k, #v)));
    let opt_str = |o: &Option<syn::LitStr>| match o {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };
    let when = opt_str(&attrs.when);
    let target = opt_str(&attrs.target);
    let workdir = opt_str(&attrs.workdir);
    let container = opt_str(&attrs.container);
    let tests = opt_str(&attrs.tests);
    let timeout = match attrs.timeout_secs {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let retry = match attrs.retry {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let prefer = match attrs.prefer {
        Some(Prefer::Remote) => {
            quote!(::core::option::Option::Some(
                ::sykli::__private::Placement::Remote
            ))
        }
        Some(Prefer::Local) => {
            quote!(::core::option::Option::Some(
                ::sykli::__private::Placement::Local
            ))
        }
        None => quote!(::core::option::Option::None),
    };
    let remote = attrs.remote;
    let no_cache = attrs.no_cache;
    let sandbox = attrs.sandbox;
    let background = match &attrs.background {
        Some(ready) => {
            let secs = attrs.ready_timeout.unwrap_or(60);
            quote!(::core::option::Option::Some((#ready, #secs)))
        }
        None => quote!(::core::option::Option::None),
    };
    // `line!()` spanned at the function name reports the line of its definition.
    let line = quote_spanned!(ident.span()=> ::core::line!());

    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        impl ::sykli::__private::TaskMarker for #ident {
            const NAME: &'static str = #name;
        }

        const _: () = {
            #extra_items

            ::sykli::__private::inventory::submit! {
                ::sykli::__private::TaskRegistration {
                    name: <#ident as ::sykli::__private::TaskMarker>::NAME,
                    function: ::core::concat!(::core::module_path!(), "::", #fn_name),
                    file: ::core::file!(),
                    line: #line,
                    action: #action,
                    after: &[#(#after),*],
                    inputs: &[#(#inputs),*],
                    outputs: &[#(#outputs),*],
                    env: &[#(#env),*],
                    timeout_secs: #timeout,
                    retry: #retry,
                    when: #when,
                    requires: &[#(#requires),*],
                    secrets: &[#(#secrets),*],
                    remote: #remote,
                    prefer: #prefer,
                    target: #target,
                    workdir: #workdir,
                    container: #container,
                    no_cache: #no_cache,
                    sandbox: #sandbox,
                    background: #background,
                    tests: #tests,
                }
            }
        };
    })
}
