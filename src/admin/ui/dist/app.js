(()=>{var g,De,ht,M,ce,Z,Pe,X,Ne,ue,_e,ft,j=Symbol.for("pv"),ee={},te=[],mt=/^m(i|n|o|s|text|space)$/,pe=Array.isArray,de=te.slice,L=Object.assign;function U(t){t&&t.parentNode&&t.remove()}function he(t,e,n){var r,s,o,a={},l=arguments.length;for(o in e)o=="key"?r=e[o]:o=="ref"&&typeof t!="function"?s=e[o]:a[o]=e[o];return l>2&&(a.children=l>3?de.call(arguments,2):n),V(t,a,r,s,null)}function V(t,e,n,r,s){var o={type:t,props:e,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:j,__v:s||++De,__i:-1,__u:0};return!s&&g.vnode&&g.vnode(o),o}function ne(t){return t.children}function B(t,e){this.props=t,this.context=e,this.__g=0}function I(t,e){if(e==null)return t.__&&I(t.__,t.__i+1);for(var n;e<t.__k.length;e++)if((n=t.__k[e])&&n.__e)return n.__e;return typeof t.type!="function"||t.props.__P?null:I(t)}function vt(t){var e,n=t.__v,r=n.__e,s=[],o=[],a=t.__P;a&&((e=L({constructor:j},n)).__v=n.__v+1,g.vnode&&g.vnode(e),fe(a,e,n,t.__n,a.namespaceURI,32&n.__u?[r]:null,s,r||I(n),32&n.__u,o),e.__v=n.__v,e.__.__k[e.__i]=e,Le(s,e,o),n.__=n.__e=null,e.__e!=r&&Me(e))}function Me(t){if((t=t.__)&&t.__c&&!t.props.__P)return t.__e=null,t.__k.some(function(e){return e&&(t.__e=e.__e)}),Me(t)}function Ae(t){(8&t.__g||(t.__g|=8,M.push(t),Z++))&&ce==g.debounceRendering||((ce=g.debounceRendering)||queueMicrotask)(Ie)}function Ie(){try{for(var t,e=1;M.length;)M.length>e&&M.sort(Pe),t=M.shift(),e=M.length,8&t.__g&&vt(t)}finally{(Z=M.length)&&(ce||queueMicrotask)(Ie)}}function Fe(t,e,n,r,s,o,a,l,_,u,c){var f,p,i,h,b,m,y=r.__k||te,v=e.length;for(_=$t(n,e,y,_,v),f=0;f<v;f++)(i=n.__k[f])!=null&&(p=~i.__i&&y[i.__i]||ee,i.__i=f,m=fe(t,i,p,s,o,a,l,_,u,c),h=i.__e,(p.ref!=i.ref||8&p.__u)&&(p.ref&&me(p.ref,null,i,p),i.ref&&c.push(i.ref,i.__c||h,i)),b=b||h,4&i.__u?(_=He(i,_,t,!p.__v),p.__e&&(p.__e=null)):typeof i.type=="function"&&m!==void 0?_=m:h&&(_=h.nextSibling),i.__u&=-21);return n.__e=b,_}function $t(t,e,n,r,s){var o,a,l,_,u,c,f,p,i,h=n.length,b=h,m=0,y=0,v=t.__k=Array(s);for(o=0;o<s;o++)(a=e[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(typeof a!="object"||a.constructor===String?a=v[o]=V(null,a):pe(a)?a=v[o]=V(ne,{children:a}):a.constructor===j&&a.__b?a=v[o]=V(a.type,a.props,a.key,a.ref,a.__v):v[o]=a,_=o+m,a.__=t,a.__b=t.__b+1,l=null,~(u=a.__i=gt(a,n,_,b))&&(b--,(l=n[u])&&(l.__u|=2)),l&&l.__v?(a.__u|=16,u==_-1?m--:u==_+1?m++:u!=_&&(u>_?m--:m++,y=1)):(~u||(s>h?m--:s<h&&m++),typeof a.type!="function"&&(a.__u|=4))):v[o]=null;if(y){for(c=[],f=[],o=0;o<s;o++)if((a=v[o])&&16&a.__u){for(m=0,p=c.length;m<p;)c[i=m+p>>1]<a.__i?m=i+1:p=i;c[m]=a.__i,f[o]=m+1}for(m=c.length;o--;)f[o]&&(f[o]==m?m--:v[o].__u|=4)}if(b)for(o=0;o<h;o++)!(l=n[o])||2&l.__u||(l.__e==r&&(r=I(l)),ve(l,l));return r}function He(t,e,n,r){var s,o,a,l;if(typeof t.type=="function"){if(t.props.__P)return e;if(s=t.__k)for(o=0;o<s.length;o++)s[o]&&(s[o].__=t,e=He(s[o],e,n,!1));return e}for(e&&!e.parentNode&&(e=I(t))&&!e.parentNode&&(e=null),a=t.__e,l=e;l&&l.nodeType==8;)l=l.nextSibling;for(a!=l&&(!r&&n.moveBefore&&a.parentNode?n.moveBefore(a,e):n.insertBefore(a,e||null)),e=a;(e=e&&e.nextSibling)&&e.nodeType==8&&!e.data.startsWith("$s"););return e}function gt(t,e,n,r){var s,o=t.key,a=t.type,l=e[n],_=l&&!(2&l.__u);if(l===null&&o==null||_&&o==l.key&&a==l.type)return n;if(r>(_?1:0)){for(s=n-1;s>=0;s--)if((l=e[s])&&!(2&l.__u)&&o==l.key&&a==l.type)return s;for(s=n+1;s<e.length;s++)if((l=e[s])&&!(2&l.__u)&&o==l.key&&a==l.type)return s}return-1}function Te(t,e,n){n==null&&(n=""),e[0]=="-"?t.setProperty(e,n):t[e]=n}function Q(t,e,n,r,s){var o,a;if(e=="style")if(typeof n=="string")t.style.cssText=n;else{if(typeof r=="string"&&(t.style.cssText=r=""),r)for(e in r)n&&e in n||Te(t.style,e);if(n)for(e in n)r&&n[e]==r[e]||Te(t.style,e,n[e])}else if(e[0]=="o"&&e[1]=="n")typeof n!="function"&&(n=null),typeof r!="function"&&(r=null),(t.__e||(t.__e={}))[e]=n,n&&r||(a=_e[e]||(_e[e]=yt(e)),(t.__a||(t.__a={}))[e]=ue,o=e!=(e=e.replace(Ne,"$1")),(e=e.slice(2))[0]<"a"&&(e=e.toLowerCase()),n?t.addEventListener(e,a,o):t.removeEventListener(e,a,o));else{if(s=="http://www.w3.org/2000/svg")e=e.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(e!="width"&&e!="height"&&e!="href"&&e!="list"&&e!="form"&&e!="tabIndex"&&e!="download"&&e!="rowSpan"&&e!="colSpan"&&e!="role"&&e!="popover"&&e in t)try{return void(t[e]=n??"")}catch{}if(typeof n=="function")return;n==null||n===!1&&e[4]!="-"?t.removeAttribute(e):t.setAttribute(e,e=="popover"&&n==1?"":n)}}function yt(t){return function(e){var n=this.__e;if(n){if(n=n[t],e[X]==null)e[X]=ue++;else if(e[X]<this.__a[t])return;return n(g.event?g.event(e):e)}}}function fe(t,e,n,r,s,o,a,l,_,u){var c,f,p,i,h,b,m,y,v,w,k,le,Ce,J,F,Ee,N,H,P=e.type;if(e.constructor!==j)return null;128&n.__u&&(_=32&n.__u,c=n.__c.__z)&&(e.__u|=_,f=o=[],c.nodeType==8?l=Y(c,o):o.push(c),l=o[0]||l),(c=g.__b)&&c(e);e:if(typeof P=="function"){p=a.length;try{if(y=e.props,v=(c=P.prototype)&&c.render,w=(c=P.contextType)&&r[c.__c],k=c?w?w.props.value:c.__:r,(i=n.__c)?(e.__c=i,2&i.__g&&(i.__g|=1)):(v?e.__c=i=new P(y,k):(e.__c=i=new B(y,k),i.constructor=P,i.render=kt),w&&w.sub(i),i.state||(i.state={}),i.__n=r,i.__g|=8,i.__h=[],i.__k=[]),v&&(i.__s||(i.__s=i.state),P.getDerivedStateFromProps&&(i.__s==i.state&&(i.__s=L({},i.__s)),L(i.__s,P.getDerivedStateFromProps(y,i.__s)))),h=i.props,b=i.state,i.__v=e,n.__c){if(y!==h&&v&&!P.getDerivedStateFromProps&&i.componentWillReceiveProps&&i.componentWillReceiveProps(y,k),e.__v==n.__v&&!(8&i.__g)||!(4&i.__g)&&i.shouldComponentUpdate&&i.shouldComponentUpdate(y,i.__s,k)===!1){e.__v!=n.__v&&(i.props=y,i.state=i.__s,i.__g&=-9),e.__e=n.__e,e.__k=n.__k,e.__k.some(function(A){A&&(A.__=e)}),te.push.apply(i.__h,i.__k),i.__k=[],i.__h.length&&a.push(i),l=I(n);break e}i.componentWillUpdate&&i.componentWillUpdate(y,i.__s,k),v&&i.componentDidUpdate&&i.__h.push(function(){i.componentDidUpdate(h,b,m)})}else v&&!P.getDerivedStateFromProps&&i.componentWillMount&&i.componentWillMount(),v&&i.componentDidMount&&i.__h.push(i.componentDidMount);i.context=k,i.props=y,i.__P=t,i.__g&=-5,le=g.__r,Ce=v?25:0;do i.__g&=-9,le&&le(e),c=i.render(i.props,i.state=i.__s,i.context);while(8&i.__g&&++Ce<25);v&&(te.push.apply(i.__h,i.__k),i.__k=[]),i.state=i.__s,i.getChildContext&&(r=L({},r,i.getChildContext())),v&&n.__c&&i.getSnapshotBeforeUpdate&&(m=i.getSnapshotBeforeUpdate(h,b)),J=c&&c.type===ne&&c.key==null?c.props.children:c,y.__P&&(c=l,s=(t=y.__P).namespaceURI,_=o=null,n.props&&n.props.__P!=t&&(n.__k.some(function(A){A&&ve(A,A)}),n.__k=null),l=n.__k?I(n,0):null),l=Fe(t,pe(J)?J:[J],e,n,r,s,o,a,l,_,u),y.__P&&(e.__e=null,l=c),e.__u&=-161,f&&f.some(U),i.__h.length&&a.push(i),1&i.__g&&(i.__g&=-4)}catch(A){if(a.length=p,e.__v=null,_||o)if(A&&A.then){if(e.__u|=128|_,o){for(~(N=o.indexOf(l||void 0))||(N=o.length);(H=o[N-1])&&H.nodeType==8;)N--;for(;N<o.length;N++)if(H=o[N])if(o[N]=null,F){if(H==Ee)break}else{if(H.nodeType!=8)break;H.data.startsWith("$s")&&(Ee=Y(F=H))}}if(!F){for(;l&&l.nodeType==8&&l.nextSibling;)l=l.nextSibling;F=l}(c=Y(F=e.__c.__z||(e.__c.__z=F)))?(e.__e=F,l=c):e.__e=l,l=l&&l.nextSibling}else o&&o.some(U);else e.__e=n.__e;e.__k||(e.__k=n.__k||[]),A&&A.then||Ue(e),g.__e(A,e,n)}}else l=e.__e=bt(n.__e,e,n,r,s,o,a,_,u,t);return(c=g.diffed)&&c(e),l}function Y(t,e){if(t&&t.nodeType==8&&t.data.startsWith("$s"))for(var n=1;t=t.nextSibling;){if(t.nodeType==8){if(t.data.startsWith("$s"))n++;else if(t.data.startsWith("/$s")&&!--n)return t}e&&e.push(t)}}function Ue(t){t&&(t.__c&&(t.__c.__g|=4),t.__k&&t.__k.some(Ue))}function Le(t,e,n){for(var r=0;r<n.length;)me(n[r++],n[r++],n[r++]);g.__c&&g.__c(e,t),t.some(function(s){try{t=s.__h,s.__h=[],t.some(function(o){o.call(s)})}catch(o){g.__e(o,s.__v)}})}function bt(t,e,n,r,s,o,a,l,_,u){var c,f,p,i,h,b,m,y,v=n.props||ee,w=e.props,k=e.type;if(k=="svg"?s="http://www.w3.org/2000/svg":k=="math"?s="http://www.w3.org/1998/Math/MathML":s||(s="http://www.w3.org/1999/xhtml"),o){for(c=0;c<o.length;c++)if((h=o[c])&&(k?h.localName==k:h.nodeType==3)){t=h,o[c]=null;break}}if(!t){if(y=u.ownerDocument||document,!k)return y.createTextNode(w);t=y.createElementNS(s,k,w.is?w:u),l&&(g.__m&&g.__m(e,o),l=!1),o=null}if(k){if(u=k=="template"&&t.content||t,o=k=="textarea"&&w.defaultValue!=null?null:o&&de.call(u.childNodes),!l&&o)for(v={},c=0;c<t.attributes.length;c++)v[(h=t.attributes[c]).name]=h.value;for(c in v)h=v[c],c=="dangerouslySetInnerHTML"?p=h:c=="children"||c in w||c=="value"&&"defaultValue"in w||c=="checked"&&"defaultChecked"in w||Q(t,c,null,h,s);for(c in w)h=w[c],c=="children"?i=h:c=="dangerouslySetInnerHTML"?f=h:c=="value"?b=h:c=="checked"?m=h:l&&typeof h!="function"||v[c]===h||Q(t,c,h,v[c],s);f?(l||p&&(f.__html==p.__html||f.__html==t.innerHTML)||(t.innerHTML=f.__html),e.__k=[]):(p&&(t.textContent=""),(k=="foreignObject"||s=="http://www.w3.org/1998/Math/MathML"&&mt.test(k))&&(s="http://www.w3.org/1999/xhtml"),Fe(u,pe(i)?i:[i],e,n,r,s,o,a,o?o[0]:n.__k&&I(n,0),l,_),o&&o.some(U)),l&&k!="textarea"||(c="value",k=="progress"&&b==null?t.removeAttribute(c):b==null||b===t[c]&&(k!="progress"||b)||Q(t,c,b,v[c],s),c="checked",m!=null&&m!=t[c]&&Q(t,c,m,v[c],s))}else v===w||l&&t.data==w||(t.data=w);return t}function me(t,e,n,r){try{typeof t=="function"?e?e.__x=t(e)||1:r&&(r=r.__c||r.__e)&&(e=r.__x)&&(r.__x=null,typeof e=="function"?e():t(null)):t.current=e}catch(s){g.__e(s,n)}}function ve(t,e,n){var r,s,o,a;if(g.unmount&&g.unmount(t),!(r=t.ref)||r.current&&r.current!=t.__e||me(r,null,e,t),r=t.__c){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(l){g.__e(l,e)}r.__P=r.__n=null}if(r=t.__k)for(a=0;a<r.length;a++)r[a]&&ve(r[a],e,typeof t.type!="function"||n&&!t.props.__P);!n&&(r=t.__c)&&(r=r.__z)&&(s=Y(r,o=[]))&&(r==t.__e&&o.some(U),U(s),U(r)),n||U(t.__e),t.__e=t.__c=t.__=null}function kt(t,e,n){return this.constructor(t,n)}function $e(t,e){var n,r,s,o;g.__&&g.__(t,e),e.nodeType==9&&(e=e.documentElement),r=(n=t&&32&t.__u)?null:e.__k,e.__k=V(ne,{children:[t]}),s=[],o=[],fe(e,e.__k,r||ee,ee,e.namespaceURI,r?null:e.firstChild?de.call(e.childNodes):null,s,r?r.__e:e.firstChild,n,o),Le(s,e.__k,o),e.__k.props.children=null}g={__e:function(t,e,n,r){for(var s,o,a;e=e.__;)if((s=e.__c)&&!(1&s.__g)){s.__g|=4;try{if((a=(o=s.constructor)&&o.getDerivedStateFromError)&&s.setState(o.getDerivedStateFromError(t)),s.componentDidCatch&&(s.componentDidCatch(t,r||{}),a=1),a&&8&s.__g)return void(s.__g|=2)}catch(l){t=l}}throw Z=0,t}},De=0,ht=function(t){return t!=null&&t.constructor===j},B.prototype.setState=function(t,e){var n=this.__s;n&&n!=this.state||(n=this.__s=L({},this.state)),typeof t=="function"&&(t=t(L({},n),this.props)),t&&(L(n,t),this.__v&&(e&&this.__k.push(e),Ae(this)))},B.prototype.forceUpdate=function(t){this.__v&&(this.__g|=4,t&&this.__h.push(t),Ae(this))},B.prototype.render=ne,M=[],Z=0,Pe=function(t,e){return t.__v.__b-e.__v.__b},X=Symbol(),Ne=/(PointerCapture)$|Capture$/i,ue=0,_e={},ft=0;var We=function(t,e,n,r){var s;e[0]=0;for(var o=1;o<e.length;o++){var a=e[o++],l=e[o]?(e[0]|=a?1:2,n[e[o++]]):e[++o];a===3?r[0]=l:a===4?r[1]=Object.assign(r[1]||{},l):a===5?(r[1]=r[1]||{})[e[++o]]=l:a===6?r[1][e[++o]]+=l+"":a?(s=t.apply(l,We(t,l,n,["",null])),r.push(s),l[0]?e[0]|=2:(e[o-2]=0,e[o]=s)):r.push(l)}return r},Re=new Map;function qe(t){var e=Re.get(this);return e||(e=new Map,Re.set(this,e)),(e=We(this,e.get(t)||(e.set(t,e=(function(n){for(var r,s,o=1,a="",l="",_=[0],u=function(p){o===1&&(p||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?_.push(0,p,a):o===3&&(p||a)?(_.push(3,p,a),o=2):o===2&&a==="..."&&p?_.push(4,p,0):o===2&&a&&!p?_.push(5,0,!0,a):o>=5&&((a||!p&&o===5)&&(_.push(o,0,a,s),o=6),p&&(_.push(o,p,0,s),o=6)),a=""},c=0;c<n.length;c++){c&&(o===1&&u(),u(c));for(var f=0;f<n[c].length;f++)r=n[c][f],o===1?r==="<"?(u(),_=[_],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:l?r===l?l="":a+=r:r==='"'||r==="'"?l=r:r===">"?(u(),o=1):o&&(r==="="?(o=5,s=a,a=""):r==="/"&&(o<5||n[c][f+1]===">")?(u(),o===3&&(_=_[0]),o=_,(_=_[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(u(),o=2):a+=r),o===3&&a==="!--"&&(o=4,_=_[0])}return u(),_})(t)),e),arguments,[])).length>1?e:e[0]}var d=qe.bind(he);var K,S,ge,Oe,ye=Object.is,oe=0,Xe=[],be=[],x=g,Ve=x.__b,Be=x.__r,je=x.diffed,ze=x.__c,Ke=x.unmount,Ge=x.__;function we(t,e){x.__h&&x.__h(S,t,oe||e),oe=0;var n=S.__H||(S.__H={__:[],__h:[]});return t>=n.__.length&&n.__.push({}),n.__[t]}function $(t){return oe=1,wt(Ze,t)}function wt(t,e,n){var r=we(K++,2);if(r.t=t,!r.__c&&(r.__=[n?n(e):Ze(void 0,e),function(o){var a=(r.__N||r.__)[0],l=r.t(a,o);ye(a,l)||(r.__N=[l,r.__[1]],r.__c.setState({}))}],r.__c=S,!S.__f)){S.__f=!0;var s=S.shouldComponentUpdate;S.shouldComponentUpdate=function(o,a,l){var _=this.__H;if(!_)return!0;var u=!1,c=this.props!=o;if(_.__.some(function(p){p.__N&&(u=!0,ye(p.__[0],p.__N[0])||(c=!0))}),s){var f=s.call(this,o,a,l);return u?f||c:f}return!u||c}}return r.__}function C(t,e){var n=we(K++,3);!x.__s&&Ye(n.__H,e)&&(n.__P=!0,n.__=t,n.u=e,S.__H.__h.push(n))}function G(t){return oe=5,xe(function(){return{current:t}},[])}function xe(t,e){var n=we(K++,7);return Ye(n.__H,e)&&(n.__=t(),n.__H=e),n.__}function xt(){var t;do{for(;t=be.shift();)try{z(t)}catch(n){x.__e(n,{__:(t=t.__P)&&t.__v})}for(;t=Xe.shift();){var e=t.__H;if(t.__P&&e)try{e.__h.some(z),e.__h.some(ke),e.__h=[]}catch(n){e.__h=[],x.__e(n,t.__v)}}}while(be.length)}x.__b=function(t){S=null,Ve&&Ve(t)},x.__=function(t,e){t&&e.__k&&e.__k.__m&&(t.__m=e.__k.__m),Ge&&Ge(t,e)},x.__r=function(t){Be&&Be(t),K=0;var e=(S=t.__c).__H;e&&(ge==S?S.__h=[]:(e.__h.some(z),e.__h.some(ke),K=0),e.__h=[],e.__.some(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})),ge=S},x.diffed=function(t){je&&je(t);var e=t.__c;e&&e.__H&&(e.__H.__h.length&&Qe(Xe.push(e)),e.__H.__.some(function(n){n.u&&(n.__H=n.u)})),ge=S=null},x.__c=function(t,e){e.some(function(n){try{n.__h.some(z),n.__h=n.__h.filter(function(r){return!r.__||ke(r)})}catch(r){n.__h=[function(){throw r}]}}),ze&&ze(t,e)},x.unmount=function(t){Ke&&Ke(t);var e,n,r=t.__c;r&&r.__H&&(r.__H.__.some(function(s){try{if(s.__P&&s.__c){if(n===void 0){for(n=t.__;n&&(!n.__c||!n.__c.__P);)n=n.__;n=n&&n.__c}s.__P=n,Qe(be.push(s))}else z(s)}catch(o){e=o}}),r.__H=void 0,e&&x.__e(e,r.__v))};var Je=typeof requestAnimationFrame=="function";function St(t){var e,n=function(){clearTimeout(r),Je&&cancelAnimationFrame(e),setTimeout(t)},r=setTimeout(n,35);Je&&(e=requestAnimationFrame(n))}function Qe(t){t!=1&&Oe==x.requestAnimationFrame||((Oe=x.requestAnimationFrame)||St)(xt)}function z(t){var e=S,n=t.__c;typeof n=="function"&&(t.__c=void 0,n()),S=e}function ke(t){var e=S;t.__c=t.__(),S=e}function Ye(t,e){return!t||t.length!=e.length||e.some(function(n,r){return!ye(n,t[r])})}function Ze(t,e){return typeof e=="function"?e(t):e}var Se="mcp-warden-admin-token",W={get:()=>sessionStorage.getItem(Se)||"",set:t=>t?sessionStorage.setItem(Se,t.trim()):sessionStorage.removeItem(Se)};function et(){let t=W.get();return t?{Authorization:`Bearer ${t}`}:{}}var re=class extends Error{constructor(e,n){super(n),this.status=e}};async function tt(t,e){let n=await fetch(e,{method:t,headers:et(),cache:"no-store"}),r=await n.text(),s=null;try{s=r?JSON.parse(r):null}catch{s={error:r.trim()}}if(!n.ok){let o=n.status===401?"the admin token is required (enter it above)":s?.error||r;throw new re(n.status,`${n.status}: ${o}`)}return s}var D=t=>tt("GET",t),q=t=>tt("POST",t),R=t=>encodeURIComponent(t);async function nt(t,e,n,r){let s=await fetch(t,{headers:et(),cache:"no-store",signal:r});if(!s.ok)throw new re(s.status,`${s.status}: ${(await s.text()).trim()}`);n("live");let o=s.body.pipeThrough(new TextDecoderStream).getReader(),a="";for(;;){let{value:l,done:_}=await o.read();if(_)break;a+=l;let u;for(;(u=a.indexOf(`

`))>=0;){let c=a.slice(0,u);a=a.slice(u+2);let f=c.split(`
`).filter(p=>p.startsWith("data:")).map(p=>p.slice(5).replace(/^ /,"")).join(`
`);if(f)try{e(JSON.parse(f))}catch{}}}}var ot=/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]|\udb40[\udc00-\udc7f]/g;function Ct(t){return"U+"+t.codePointAt(0).toString(16).toUpperCase().padStart(4,"0")}function E(t){let e=String(t??""),n=[],r=0;for(let s of e.matchAll(ot)){s.index>r&&n.push(e.slice(r,s.index));let o=Ct(s[0]);n.push(d`<mark class="invis" title=${`invisible character ${o}`}>⟦${o}⟧</mark>`),r=s.index+s[0].length}return n.push(e.slice(r)),n}var rt=t=>(String(t??"").match(ot)||[]).length,O=t=>JSON.stringify(t,null,2);function se(t){if(!t)return"\u2014";let e=Math.max(0,(Date.now()-Date.parse(t))/1e3);return e<60?`${Math.round(e)} s ago`:e<3600?`${Math.round(e/60)} min ago`:e<86400?`${Math.round(e/3600)} h ago`:`${Math.round(e/86400)} d ago`}var ae=(t,e=2)=>typeof t=="number"?t.toFixed(e):"\u2014";function T({error:t}){return t?d`<p class="error" role="alert">${String(t.message||t)}</p>`:null}var Et=["critical","high","medium","low"];function st({announce:t}){let[e,n]=$(null),[r,s]=$(null),[o,a]=$(!1),l=()=>D("/api/v1/alerts/trail").then(c=>(n(c),s(null))).catch(s);C(()=>{l();let c=setInterval(l,5e3);return()=>clearInterval(c)},[]);let _=c=>q(`/api/v1/alerts/${R(c.audit_id)}/ack`).then(()=>(t(`alert ${c.audit_id} acknowledged`),l())).catch(s),u=(e||[]).filter(c=>o||!c.acknowledged);return d`<section aria-labelledby="h-alerts">
    <h1 id="h-alerts">Alerts</h1>
    <p class="hint">Security alerts of the last 24 hours from the audit trail, by severity.</p>
    <label class="inline"><input type="checkbox" checked=${o}
      onChange=${c=>a(c.currentTarget.checked)} /> Show acknowledged</label>
    <${T} error=${r} />
    ${e&&u.length===0&&d`<p>No ${o?"":"unacknowledged "}alert.</p>`}
    ${Et.map(c=>{let f=u.filter(p=>p.severity===c);return f.length===0?null:d`<section aria-label=${`${c} alerts`}>
            <h2><span class=${`badge sev-${c}`}>${c}</span> ${f.length}</h2>
            <ul class="cards">${f.map(p=>d`<li class="card" key=${p.audit_id} data-alert=${p.audit_id}>
                <h3>${p.event} <span class="hint">on ${p.server||"the proxy"}, ${se(p.ts)}</span></h3>
                <p>${E(p.reason||`rule ${p.rule||p.event}, decision ${p.decision}`)}${p.tool&&d` (tool <code>${E(p.tool)}</code>)`}</p>
                ${p.acknowledged?d`<p class="ok">Acknowledged</p>`:d`<button type="button" onClick=${()=>_(p)}>Acknowledge</button>`}
              </li>`)}</ul>
          </section>`})}
  </section>`}function at({announce:t}){let[e,n]=$(null),[r,s]=$(null),[o,a]=$(Date.now()/1e3),l=()=>D("/api/v1/approvals").then(u=>(n(u.filter(c=>c.status==="pending")),s(null),a(Date.now()/1e3))).catch(s);C(()=>{l();let u=setInterval(l,1e3);return()=>clearInterval(u)},[]);let _=(u,c)=>q(`/api/v1/approvals/${R(u.id)}/${c}`).then(()=>(t(`${u.tool} on ${u.server}: ${c==="approve"?"approved":"denied"}`),l())).catch(s);return d`<section aria-labelledby="h-approvals">
    <h1 id="h-approvals">Approvals</h1>
    <p class="hint">Calls waiting for a human. Arguments are shown as the proxy's safe view (secrets and
      long values cut). Deciding needs the admin token and is signed with the proxy's key.</p>
    <${T} error=${r} />
    ${e&&e.length===0&&d`<p>No call is waiting.</p>`}
    <ul class="cards" aria-live="polite">
      ${(e||[]).map(u=>d`<li class="card" key=${u.id} data-ticket=${u.id} data-tool=${u.tool}>
          <h2><code>${E(u.tool)}</code> on ${u.server}</h2>
          <p><span class=${`badge risk-${u.risk}`}>risk ${u.risk}</span> rule <code>${u.rule}</code>;
            expires in ${Math.max(0,Math.round(u.expires-o))} s</p>
          <dl class="args">${(u.arguments||[]).map(c=>d`<dd><code>${E(c)}</code></dd>`)}</dl>
          ${(u.arguments||[]).length===0&&d`<p class="hint">No arguments.</p>`}
          <div class="actions">
            <button type="button" class="primary" onClick=${()=>_(u,"approve")}>Approve ${u.tool}</button>
            <button type="button" class="danger" onClick=${()=>_(u,"deny")}>Deny</button>
          </div>
        </li>`)}
    </ul>
  </section>`}var it=500;function At(){let[t,e]=$(null),[n,r]=$(null),s=()=>D("/api/v1/audit/files").then(e).catch(r);return C(()=>{s()},[]),d`<section aria-labelledby="h-verify">
    <h2 id="h-verify">Trail files <button type="button" onClick=${s}>Verify again</button></h2>
    <${T} error=${n} />
    ${t&&d`<div class="scroll" tabindex="0" role="region" aria-label="trail files"><table>
      <thead><tr><th scope="col">File</th><th scope="col">Lines</th><th scope="col">audit verify</th>
        <th scope="col">Checkpoints</th><th scope="col">Last checkpoint</th></tr></thead>
      <tbody>${t.files.map(o=>d`<tr data-file=${o.file}>
          <td><code>${o.file}</code></td><td class="num">${o.lines??"\u2014"}</td>
          <td class=${o.status==="intact"?"ok":"error"}>${o.status}${o.line?` at line ${o.line}: ${o.reason}`:""}</td>
          <td class="num">${o.checkpoints??"\u2014"}${o.unsigned_tail?` (+${o.unsigned_tail} after)`:""}</td>
          <td>${o.last_checkpoint?`seq ${o.last_checkpoint.seq}, ${o.last_checkpoint.ts}`:"none yet"}</td>
        </tr>`)}</tbody></table></div>
    <p class="hint">${t.key_checked?"Checkpoints checked against this proxy's identity key.":"No identity key: chains only."}
      ${t.total_files>t.files.length&&` The newest ${t.files.length} of ${t.total_files} files.`}</p>`}
  </section>`}function Tt({record:t,onClose:e}){let n=G(null);return C(()=>n.current?.focus(),[t]),d`<div class="record" role="dialog" aria-modal="false" aria-labelledby="h-record" tabindex="-1" ref=${n}
    onKeyDown=${r=>r.key==="Escape"&&e()}>
    <h2 id="h-record">Record ${t.audit_id||`seq ${t.seq}`}</h2>
    <pre tabindex="0">${E(O(t))}</pre>
    <button type="button" onClick=${e}>Close</button>
  </div>`}var Dt=(t,e)=>[...new Set(t.map(n=>n[e]).filter(Boolean))].sort();function lt(){let[t,e]=$([]),[n,r]=$("connecting"),[s,o]=$(null),[a,l]=$({server:"",decision:"",event:""}),[_,u]=$(null),c=G([]);C(()=>{let i=new AbortController,h=null;return nt("/api/v1/audit/stream",m=>{c.current.push(m),h||(h=requestAnimationFrame(()=>{h=null;let y=c.current.splice(0);e(v=>[...y,...v].sort((w,k)=>(k.ts||"").localeCompare(w.ts||"")).slice(0,it))}))},r,i.signal).then(()=>r("ended")).catch(m=>m.name!=="AbortError"&&(o(m),r("failed"))),()=>i.abort()},[]);let f=xe(()=>t.filter(i=>(!a.server||i.server===a.server)&&(!a.decision||i.decision===a.decision)&&(!a.event||i.event===a.event)),[t,a]),p=(i,h)=>d`<label>${h}
    <select value=${a[i]} onChange=${b=>l({...a,[i]:b.currentTarget.value})}>
      <option value="">all</option>
      ${Dt(t,i).map(b=>d`<option value=${b}>${b}</option>`)}
    </select></label>`;return d`<section aria-labelledby="h-audit">
    <h1 id="h-audit">Audit</h1>
    <p class="hint">Live from <code>/api/v1/audit/stream</code> (<span data-stream-state=${n}>${n}</span>); the newest ${it} records.</p>
    <${T} error=${s} />
    <form class="filters" onSubmit=${i=>i.preventDefault()} aria-label="filters">
      ${p("server","Server")} ${p("decision","Decision")} ${p("event","Event")}
    </form>
    <div class="scroll" tabindex="0" role="region" aria-label="audit records"><table class="audit">
      <thead><tr><th scope="col">Time</th><th scope="col">Server</th><th scope="col">Event</th>
        <th scope="col">Method / tool</th><th scope="col">Decision</th><th scope="col">Record</th></tr></thead>
      <tbody>${f.map(i=>d`<tr key=${`${i.audit_id}:${i.seq}:${i.ts}`} data-audit-id=${i.audit_id} class=${`d-${i.decision}`}>
          <td><time datetime=${i.ts}>${(i.ts||"").slice(11,23)}</time></td>
          <td>${i.server}</td><td>${i.event}</td>
          <td>${E([i.method,i.tool].filter(Boolean).join(" "))}</td>
          <td>${i.decision}</td>
          <td><button type="button" onClick=${()=>u(i)} aria-label=${`open record ${i.audit_id||i.seq}`}>Open</button></td>
        </tr>`)}</tbody></table></div>
    ${_&&d`<${Tt} record=${_} onClose=${()=>u(null)} />`}
    <${At} />
  </section>`}function ct({title:t,value:e}){let n=e==null?"(nothing pinned: a new definition)":O(e),r=rt(n);return d`<div class="side">
    <h4>${t}${r>0&&d` <span class="badge warn">${r} invisible character${r>1?"s":""}</span>`}</h4>
    <pre tabindex="0" aria-label=${t}>${E(n)}</pre>
  </div>`}function Pt({server:t,item:e,onDone:n}){let[r,s]=$(!1),[o,a]=$(null),l=_=>{s(!0),q(`/api/v1/pins/${R(t)}/${_}/${R(e.key)}`).then(u=>n(`${e.key}: ${u.status==="approved"?"approved, listed again":"kept held"} (audit ${u.audit_id})`)).catch(u=>(a(u),s(!1)))};return d`<article class="held" data-item=${e.key}>
    <h3>${e.kind} <code>${E(e.key)}</code>
      <span class="badge">${e.reason==="changed"?"changed since pinned":"new"}</span>
      ${e.exposed?d`<span class="badge">exposed (alert mode)</span>`:d`<span class="badge warn">held</span>`}</h3>
    <p class="hint">First seen ${e.first_seen}; sha256 ${e.sha256.slice(0,16)}…</p>
    ${e.findings.length>0&&d`<ul class="findings" aria-label="scanner findings">${e.findings.map(_=>d`<li>${E(_)}</li>`)}</ul>`}
    <div class="sides"><${ct} title="Pinned" value=${e.pinned} /><${ct} title="Held" value=${e.held} /></div>
    ${e.changes.length>0&&d`<details><summary>${e.changes.length} change(s)</summary><ul class="changes">
      ${e.changes.map(_=>d`<li><code>${_.path||"(whole definition)"}</code>: <del>${E(_.old==null?"\u2014":O(_.old))}</del>
          → <ins>${E(_.new==null?"\u2014":O(_.new))}</ins></li>`)}</ul></details>`}
    <${T} error=${o} />
    <div class="actions">
      <button type="button" class="primary" disabled=${r} onClick=${()=>l("approve")}>Approve ${e.key}</button>
      <button type="button" disabled=${r} onClick=${()=>l("keep")}>Keep held</button>
    </div>
  </article>`}function _t({announce:t}){let[e,n]=$(null),[r,s]=$(null),o=()=>D("/api/v1/pins").then(l=>(n(l),s(null))).catch(s);C(()=>{o();let l=setInterval(o,5e3);return()=>clearInterval(l)},[]);let a=(e||[]).filter(l=>l.items.length>0||l.error);return d`<section aria-labelledby="h-drift">
    <h1 id="h-drift">Drift and pins</h1>
    <p class="hint">Definitions a proxy held back, each beside its pin. Approve has the effect of <code>mcp-warden pins approve SERVER ITEM</code>; both answers are written to the audit trail.</p>
    <${T} error=${r} />
    ${e&&a.length===0&&d`<p>Nothing is held: every server lists what was approved.</p>`}
    ${a.map(l=>d`<section class="pinserver" data-pin-server=${l.server} aria-label=${`held for ${l.server}`}>
        <h2>${l.server}${l.signed&&d` <span class="badge">signed pins</span>`}</h2>
        ${l.error&&d`<p class="error">${l.error}</p>`}
        ${l.items.map(_=>d`<${Pt} key=${_.kind+_.key} server=${l.server} item=${_}
            onDone=${u=>(t(u),o())} />`)}
      </section>`)}
  </section>`}function ut({calls:t,denials:e,label:n}){let o=t.length||1,a=Math.max(1,...t,...e),l=p=>(p+.5)*120/o,_=p=>26-p/a*24,u=t.map((p,i)=>`${l(i).toFixed(1)},${_(p).toFixed(1)}`).join(" "),c=p=>p.reduce((i,h)=>i+h,0),f=`${n}: ${c(t)} calls and ${c(e)} denials in the last 24 hours`;return d`<svg class="spark" viewBox="0 0 ${120} ${28}" width=${120} height=${28} role="img" aria-label=${f}>
    <title>${f}</title>
    ${e.map((p,i)=>p>0?d`<rect class="deny" x=${(l(i)-120/o/2+.5).toFixed(1)} y=${_(p).toFixed(1)}
            width=${(120/o-1).toFixed(1)} height=${(26-_(p)).toFixed(1)} />`:null)}
    <polyline class="calls" points=${u} />
  </svg>`}var Nt=t=>Object.entries(t||{}).map(([e,n])=>`${e.replace(/_/g," ")}: ${n}`).join(", ")||"no evidence";function Mt({trust:t}){return t?.factors?d`<table class="factors">
    <caption>The eight trust factors (weights before renormalisation; "—" has no data)</caption>
    <thead><tr><th scope="col">Factor</th><th scope="col">Value</th><th scope="col">Weight</th><th scope="col">Evidence</th></tr></thead>
    <tbody>
      ${t.factors.map(e=>d`<tr data-factor=${e.name}>
          <th scope="row">${e.name.replace(/_/g," ")}</th>
          <td class="num" data-value=${e.value??""}>${ae(e.value)}</td>
          <td class="num">${ae(e.weight)}</td>
          <td>${Nt(e.evidence)}</td>
        </tr>`)}
    </tbody>
  </table>`:d`<p class="error">${t?.error||"no trust data"}</p>`}function It({s:t}){let[e,n]=$(!1),r=t.trust?.score,s=r>=.7?"good":r>=.5?"fair":"poor",o=`factors-${t.name.replace(/[^a-z0-9_-]/gi,"_")}`;return d`<tbody class="server" data-server=${t.name}>
    <tr>
      <th scope="row">${t.name}</th>
      <td data-label="Transport">${t.transport}</td>
      <td data-label="Era">${t.era||"\u2014"}</td>
      <td class="num" data-label="Pinned / drifted / held" title="pinned / drifted / held">
        <span data-pins="pinned">${t.pins.pinned}</span> / <span data-pins="drifted">${t.pins.drifted}</span> / <span data-pins="held" class=${t.pins.held?"warn":""}>${t.pins.held}</span>
      </td>
      <td class="num" data-label="Trust">
        <button type="button" class=${`score ${s}`} aria-expanded=${e} aria-controls=${o}
          data-score=${r??""} onClick=${()=>n(!e)}>
          ${ae(r)}<span class="sr-only"> trust: show the factors</span>
        </button>
      </td>
      <td data-label="Last seen"><time datetime=${t.last_seen||""}>${se(t.last_seen)}</time></td>
      <td data-label="24 h"><${ut} calls=${t.hourly.calls} denials=${t.hourly.denials} label=${t.name} /></td>
    </tr>
    ${e&&d`<tr id=${o} class="detail"><td colspan="7"><${Mt} trust=${t.trust} /></td></tr>`}
  </tbody>`}function pt(){let[t,e]=$(null),[n,r]=$(null);return C(()=>{let s=!0,o=()=>D("/api/v1/overview").then(l=>s&&(e(l),r(null))).catch(l=>s&&r(l));o();let a=setInterval(o,5e3);return()=>(s=!1,clearInterval(a))},[]),d`<section aria-labelledby="h-servers">
    <h1 id="h-servers">Servers</h1>
    <p class="hint">Every server this state directory knows: <code>serve</code> routes of this process and <code>wrap</code> processes on this machine. Select a trust score for its eight factors.</p>
    <${T} error=${n} />
    ${t&&d`<div class="scroll" tabindex="0" role="region" aria-label="servers table"><table class="servers">
      <thead><tr>
        <th scope="col">Server</th><th scope="col">Transport</th><th scope="col">Era</th>
        <th scope="col">Pinned / drifted / held</th><th scope="col">Trust</th>
        <th scope="col">Last seen</th><th scope="col">Calls and denials, 24 h</th>
      </tr></thead>
      ${t.servers.map(s=>d`<${It} key=${s.name} s=${s} />`)}
    </table></div>
    ${t.servers.length===0&&d`<p>No server seen yet.</p>`}
    ${t.window_truncated&&d`<p class="hint">The trail is large: the sparklines show its newest part.</p>`}`}
  </section>`}var ie=[["servers","Servers",pt],["drift","Drift and pins",_t],["approvals","Approvals",at],["audit","Audit",lt],["alerts","Alerts",st]],dt=()=>{let t=location.hash.replace(/^#\/?/,"");return ie.some(([e])=>e===t)?t:"servers"};function Ft({onChange:t}){let[e,n]=$(W.get()),r=W.get()!=="";return d`<form class="token" onSubmit=${s=>(s.preventDefault(),W.set(e),t())}>
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" value=${e}
      placeholder=${r?"saved for this tab":"needed to decide"} onInput=${s=>n(s.currentTarget.value)} />
    <button type="submit">${r?"Update":"Use token"}</button>
    ${r&&d`<button type="button" onClick=${()=>(W.set(""),n(""),t())}>Forget</button>`}
  </form>`}function Ht(){let[t,e]=$(dt()),[n,r]=$(0),[s,o]=$(""),a=G(null);C(()=>{let _=()=>{e(dt()),a.current?.focus()};return addEventListener("hashchange",_),()=>removeEventListener("hashchange",_)},[]),C(()=>{document.title=`${ie.find(([_])=>_===t)[1]} \xB7 mcp-warden`},[t]);let l=ie.find(([_])=>_===t)[2];return d`<header>
      <p class="brand">mcp-warden</p>
      <nav aria-label="Dashboard pages"><ul>
        ${ie.map(([_,u])=>d`<li><a href=${`#/${_}`} aria-current=${_===t?"page":void 0}>${u}</a></li>`)}
      </ul></nav>
      <${Ft} onChange=${()=>r(n+1)} />
    </header>
    <p class="status" role="status" aria-live="polite">${s}</p>
    <main id="main" tabindex="-1" ref=${a}>
      <${l} key=${`${t}:${n}`} announce=${o} />
    </main>`}$e(d`<${Ht} />`,document.getElementById("app"));})();
